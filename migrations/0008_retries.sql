-- 0008: retries and pacing metrics (issue 4).
--
-- A lead may now get up to a campaign's `max_attempts` attempts per schedule, so the
-- double-dial guard becomes UNIQUE (lead_id, schedule_id, attempt_number). SQLite
-- cannot drop a table constraint, so `attempts` is rebuilt (the documented procedure,
-- https://sqlite.org/lang_altertable.html#otheralter). Foreign keys stay on: the
-- only table referencing attempts, call_events, is parked in a temporary table while
-- the old table is dropped, then restored with the same ids.
--
-- New columns:
--   attempt_number  1 for the first call of a lead in a schedule, 2 for its first retry…
--   campaign_id     the schedule's campaign when the call was placed (metrics, pacing)
--   next_step       why a retry follows or not, shown on the lead's attempt history
--   retry_at        when the retry this attempt led to is due (UTC ms)
--   connected_at    when the message or an agent reached an answered call (UTC ms);
--                   later than answered_at + 2 s (or never) counts as abandoned
--   transfer_result `connected` | `failed` once a transfer was tried
CREATE TABLE attempts_new (
    id               INTEGER PRIMARY KEY,
    lead_id          INTEGER NOT NULL REFERENCES leads(id),
    schedule_id      INTEGER REFERENCES schedules(id),
    batch_id         INTEGER REFERENCES batches(id),
    campaign_id      INTEGER NOT NULL DEFAULT 1 REFERENCES campaigns(id),
    attempt_number   INTEGER NOT NULL DEFAULT 1 CHECK (attempt_number >= 1),
    caller_number_id INTEGER NOT NULL REFERENCES caller_numbers(id),
    caller_number    TEXT    NOT NULL,
    to_number        TEXT    NOT NULL,
    usage_day        TEXT    NOT NULL,
    provider         TEXT    NOT NULL,
    provider_call_id TEXT    UNIQUE,
    status           TEXT    NOT NULL,
    answered_by      TEXT,
    error            TEXT,
    created_at       INTEGER NOT NULL,
    answered_at      INTEGER,
    connected_at     INTEGER,
    transfer_result  TEXT,
    ended_at         INTEGER,
    duration_seconds INTEGER,
    caller_tier      TEXT,
    caller_candidates INTEGER,
    next_step        TEXT,
    retry_at         INTEGER,
    -- One attempt per lead, schedule and attempt number: the database refuses a
    -- double dial, including two "first retries".
    UNIQUE (lead_id, schedule_id, attempt_number)
);
INSERT INTO attempts_new (id, lead_id, schedule_id, batch_id, campaign_id, attempt_number, caller_number_id,
                          caller_number, to_number, usage_day, provider, provider_call_id, status, answered_by,
                          error, created_at, answered_at, ended_at, duration_seconds, caller_tier, caller_candidates)
SELECT a.id, a.lead_id, a.schedule_id, a.batch_id,
       COALESCE((SELECT s.campaign_id FROM schedules s WHERE s.id = a.schedule_id), 1), 1,
       a.caller_number_id, a.caller_number, a.to_number, a.usage_day, a.provider, a.provider_call_id, a.status,
       a.answered_by, a.error, a.created_at, a.answered_at, a.ended_at, a.duration_seconds, a.caller_tier,
       a.caller_candidates
FROM attempts a;

CREATE TEMP TABLE call_events_parked AS SELECT * FROM call_events;
DELETE FROM call_events;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;
INSERT INTO call_events SELECT * FROM temp.call_events_parked;
DROP TABLE temp.call_events_parked;

CREATE INDEX attempts_in_flight ON attempts(created_at) WHERE ended_at IS NULL;
CREATE INDEX attempts_lead ON attempts(lead_id);
CREATE INDEX attempts_created ON attempts(created_at);
CREATE INDEX attempts_caller_number ON attempts(caller_number_id, id);
CREATE INDEX attempts_campaign ON attempts(campaign_id, created_at);
