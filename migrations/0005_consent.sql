-- 0005: consent on leads (issue 4): when and how the lead agreed to be called,
-- imported when the CSV has it, shown on the lead. A campaign can require it.
ALTER TABLE leads ADD COLUMN consent_at INTEGER;              -- UTC ms
ALTER TABLE leads ADD COLUMN consent_source TEXT NOT NULL DEFAULT '';
