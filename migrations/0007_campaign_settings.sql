-- 0007: per-campaign settings (issue 4), a JSON object checked by
-- `campaigns::Settings`: calling hours and allowed days, concurrency, a daily cap,
-- the caller-number pool.
ALTER TABLE campaigns ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
