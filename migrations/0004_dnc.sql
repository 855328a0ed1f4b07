-- 0004: the do-not-call list becomes a managed record (issue 4): entries get a
-- stable id (newest-first keyset pages), and every addition and removal is kept in
-- an append-only audit log with its source, reason and who made it.

-- Rebuild `dnc` with an integer id; phone stays unique (the claim looks it up by phone).
CREATE TABLE dnc_new (
    id         INTEGER PRIMARY KEY,
    phone      TEXT    NOT NULL UNIQUE,                   -- E.164
    source     TEXT    NOT NULL,                          -- keypad | inbound | api | dashboard | …
    reason     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL                           -- UTC ms; the first opt-out's time
);
INSERT INTO dnc_new (phone, source, reason, created_at)
    SELECT phone, source, reason, created_at FROM dnc ORDER BY created_at, phone;
DROP TABLE dnc;
ALTER TABLE dnc_new RENAME TO dnc;

-- Every change to the list. Never updated or deleted: removing a number from the
-- list deletes its `dnc` row and appends a `removed` event here.
CREATE TABLE dnc_events (
    id     INTEGER PRIMARY KEY,
    phone  TEXT    NOT NULL,                              -- E.164
    action TEXT    NOT NULL CHECK (action IN ('added', 'removed')),
    source TEXT    NOT NULL,                              -- the entry's source
    reason TEXT    NOT NULL DEFAULT '',
    actor  TEXT    NOT NULL,                              -- user | api | caller | system
    at     INTEGER NOT NULL                               -- UTC ms
);
CREATE INDEX dnc_events_phone ON dnc_events(phone, id);
