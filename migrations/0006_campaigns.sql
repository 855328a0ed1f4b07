-- 0006: campaigns (issue 4). Every schedule belongs to one; a default campaign
-- (id 1) holds schedules made without choosing one. Lifecycle:
-- draft → scheduled → running ⇄ paused → completed, or cancelled; every
-- transition is kept with its reason.
CREATE TABLE campaigns (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    status     TEXT    NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO campaigns (id, name, status, created_at, updated_at) VALUES (1, 'Default', 'running', 0, 0);

CREATE TABLE campaign_events (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    at          INTEGER NOT NULL,                       -- UTC ms
    from_status TEXT,
    to_status   TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    actor       TEXT    NOT NULL                        -- user | api | scheduler | system
);
CREATE INDEX campaign_events_campaign ON campaign_events(campaign_id, id);

-- Existing schedules belong to the default campaign. (No REFERENCES: SQLite cannot
-- add a foreign-key column with a non-NULL default; the store checks it.)
ALTER TABLE schedules ADD COLUMN campaign_id INTEGER NOT NULL DEFAULT 1;
CREATE INDEX schedules_campaign ON schedules(campaign_id);
