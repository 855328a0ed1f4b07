-- 0003: caller numbers become first-class records (issue 3): label, priority,
-- health status, spam score, pools, warming, a history of every change, and the
-- reason each attempt's caller ID was chosen.
ALTER TABLE caller_numbers ADD COLUMN label TEXT;
-- 1..10; the weight of the number in smooth weighted rotation.
ALTER TABLE caller_numbers ADD COLUMN rotation_priority INTEGER NOT NULL DEFAULT 5
    CHECK (rotation_priority BETWEEN 1 AND 10);
-- active | resting | quarantined | retired. Only active numbers are dialled from.
ALTER TABLE caller_numbers ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'resting', 'quarantined', 'retired'));
-- UTC ms; a resting number is re-checked at this time.
ALTER TABLE caller_numbers ADD COLUMN rest_until INTEGER;
-- 0..100, NULL = never scored; spam_source = manual | derived | import:<source>.
ALTER TABLE caller_numbers ADD COLUMN spam_score INTEGER CHECK (spam_score BETWEEN 0 AND 100);
ALTER TABLE caller_numbers ADD COLUMN spam_source TEXT;
ALTER TABLE caller_numbers ADD COLUMN spam_updated_at INTEGER;
-- Campaign pool name; NULL = the shared pool.
ALTER TABLE caller_numbers ADD COLUMN pool TEXT;
-- Local date (configured zone) of the first call placed from the number: warming day 0.
ALTER TABLE caller_numbers ADD COLUMN first_used_day TEXT;
-- Set when health policy wanted to rest or quarantine the number but the pool's
-- resting-share limit kept it dialling: shown to the user until they act.
ALTER TABLE caller_numbers ADD COLUMN attention TEXT;

-- Every status change and edit, with its reason and who made it.
CREATE TABLE number_events (
    id        INTEGER PRIMARY KEY,
    number_id INTEGER NOT NULL REFERENCES caller_numbers(id),
    at        INTEGER NOT NULL,                      -- UTC ms
    kind      TEXT    NOT NULL,                      -- added | status | edit | score
    detail    TEXT    NOT NULL,
    actor     TEXT    NOT NULL                       -- user | api | config | health
);
CREATE INDEX number_events_number ON number_events(number_id, id);

-- Bumped by any change to caller_numbers that changes who may dial or how much
-- (not labels or first use), so the call loop's in-memory rotation knows when to
-- reload the pool.
CREATE TABLE rotation_meta (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO rotation_meta (id, version) VALUES (1, 0);
CREATE TRIGGER caller_numbers_insert_version AFTER INSERT ON caller_numbers BEGIN
    UPDATE rotation_meta SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER caller_numbers_update_version
AFTER UPDATE OF enabled, status, max_daily_calls, rotation_priority, pool, spam_score, rest_until
ON caller_numbers BEGIN
    UPDATE rotation_meta SET version = version + 1 WHERE id = 1;
END;

-- Why the caller ID was chosen: tier (area_code | state | timezone | any) and how
-- many numbers with capacity that tier had.
ALTER TABLE attempts ADD COLUMN caller_tier TEXT;
ALTER TABLE attempts ADD COLUMN caller_candidates INTEGER;

-- Why a due lead is waiting (calling_hours | no_local_number | lead_24h_cap); NULL when not waiting.
ALTER TABLE leads ADD COLUMN wait_reason TEXT;

-- A number's recent calls, for its derived health score.
CREATE INDEX attempts_caller_number ON attempts(caller_number_id, id);
