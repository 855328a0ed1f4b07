-- 0001: the main job. Times are INTEGER milliseconds since the Unix epoch, UTC.
-- Append-only: never edit a migration that has shipped; add a new file.

CREATE TABLE imports (
    id          INTEGER PRIMARY KEY,
    filename    TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    imported    INTEGER NOT NULL DEFAULT 0,
    duplicates  INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0
);

-- Rows an import refused, kept whole so the user can fix and re-upload them.
CREATE TABLE import_rejections (
    id        INTEGER PRIMARY KEY,
    import_id INTEGER NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    line      INTEGER NOT NULL,
    field     TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    raw       TEXT    NOT NULL
);
CREATE INDEX import_rejections_import ON import_rejections(import_id, line);

CREATE TABLE schedules (
    id               INTEGER PRIMARY KEY,
    start_at         INTEGER NOT NULL,
    timezone         TEXT    NOT NULL,
    parallel_calls   INTEGER NOT NULL,
    interval_seconds INTEGER NOT NULL,
    total_leads      INTEGER NOT NULL,
    total_batches    INTEGER NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'active',   -- active | cancelled
    created_at       INTEGER NOT NULL,
    cancelled_at     INTEGER
);

CREATE TABLE batches (
    id          INTEGER PRIMARY KEY,
    schedule_id INTEGER NOT NULL REFERENCES schedules(id),
    batch_index INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    lead_count  INTEGER NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'pending',       -- pending | fired | missed | cancelled
    fired_at    INTEGER,
    UNIQUE (schedule_id, batch_index)
);
CREATE INDEX batches_pending_due ON batches(due_at, id) WHERE status = 'pending';

CREATE TABLE leads (
    id              INTEGER PRIMARY KEY,
    uuid            TEXT    NOT NULL UNIQUE,
    phone           TEXT    NOT NULL UNIQUE,              -- E.164
    whatsapp        TEXT    NOT NULL DEFAULT '',
    name            TEXT    NOT NULL DEFAULT '',
    email           TEXT    NOT NULL DEFAULT '',
    partner         TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL DEFAULT '',
    timezone        TEXT,                                 -- IANA zones joined by '&'; NULL = unknown
    timezone_source TEXT    NOT NULL DEFAULT 'default',   -- column | number | default
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    schedule_id     INTEGER REFERENCES schedules(id),
    batch_id        INTEGER REFERENCES batches(id),
    -- When a scheduled lead may be dialled next: set when its batch fires, moved
    -- forward while it waits for calling hours. NULL = not due.
    next_call_at    INTEGER,
    import_id       INTEGER REFERENCES imports(id),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX leads_status_id ON leads(status, id);
CREATE INDEX leads_due ON leads(next_call_at, id) WHERE status = 'scheduled' AND next_call_at IS NOT NULL;
CREATE INDEX leads_batch ON leads(batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX leads_schedule ON leads(schedule_id) WHERE schedule_id IS NOT NULL;

-- Lead counts per status, kept by triggers so totals stay O(1) at 1,000,000 leads.
CREATE TABLE lead_counts (
    status TEXT PRIMARY KEY,
    n      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER lead_counts_insert AFTER INSERT ON leads BEGIN
    INSERT INTO lead_counts(status, n) VALUES (NEW.status, 1)
        ON CONFLICT(status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER lead_counts_update AFTER UPDATE OF status ON leads WHEN OLD.status <> NEW.status BEGIN
    UPDATE lead_counts SET n = n - 1 WHERE status = OLD.status;
    INSERT INTO lead_counts(status, n) VALUES (NEW.status, 1)
        ON CONFLICT(status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER lead_counts_delete AFTER DELETE ON leads BEGIN
    UPDATE lead_counts SET n = n - 1 WHERE status = OLD.status;
END;

CREATE TABLE caller_numbers (
    id              INTEGER PRIMARY KEY,
    number          TEXT    NOT NULL UNIQUE,              -- E.164
    enabled         INTEGER NOT NULL DEFAULT 1,
    max_daily_calls INTEGER NOT NULL DEFAULT 100,
    -- Round-robin position: the number picked longest ago has the smallest value.
    last_pick       INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);

-- Calls placed per caller number per local day (the configured zone's date).
-- A slot is reserved with a guarded UPDATE in the same transaction as the attempt.
CREATE TABLE number_usage (
    number_id INTEGER NOT NULL REFERENCES caller_numbers(id),
    day       TEXT    NOT NULL,                           -- YYYY-MM-DD, local
    calls     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (number_id, day)
) WITHOUT ROWID;

CREATE TABLE attempts (
    id               INTEGER PRIMARY KEY,
    lead_id          INTEGER NOT NULL REFERENCES leads(id),
    schedule_id      INTEGER REFERENCES schedules(id),
    batch_id         INTEGER REFERENCES batches(id),
    caller_number_id INTEGER NOT NULL REFERENCES caller_numbers(id),
    caller_number    TEXT    NOT NULL,
    to_number        TEXT    NOT NULL,
    usage_day        TEXT    NOT NULL,
    provider         TEXT    NOT NULL,
    provider_call_id TEXT    UNIQUE,
    status           TEXT    NOT NULL,                    -- dialing | ringing | in_progress | outcome
    answered_by      TEXT,
    error            TEXT,
    created_at       INTEGER NOT NULL,
    answered_at      INTEGER,
    ended_at         INTEGER,                             -- NULL while the call holds a concurrency slot
    duration_seconds INTEGER,
    -- One attempt per lead per schedule: the database refuses a double dial.
    UNIQUE (lead_id, schedule_id)
);
CREATE INDEX attempts_in_flight ON attempts(created_at) WHERE ended_at IS NULL;
CREATE INDEX attempts_lead ON attempts(lead_id);
CREATE INDEX attempts_created ON attempts(created_at);

-- Every provider webhook, verbatim; the unique key makes replays no-ops.
CREATE TABLE call_events (
    id               INTEGER PRIMARY KEY,
    attempt_id       INTEGER REFERENCES attempts(id),
    provider_call_id TEXT    NOT NULL,
    sequence         TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    params           TEXT    NOT NULL,                    -- JSON array of [name, value]
    received_at      INTEGER NOT NULL,
    UNIQUE (provider_call_id, sequence)
);

CREATE TABLE dnc (
    phone      TEXT PRIMARY KEY,                          -- E.164
    source     TEXT    NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
