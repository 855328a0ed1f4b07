-- Dashboard users, server-side sessions, API tokens and the audit log (issue 6).

-- Passwords are Argon2id PHC strings (argon2 crate defaults: m=19 MiB, t=2, p=1,
-- OWASP Password Storage Cheat Sheet's minimum).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);

-- tower-sessions records. `id_hash` is SHA-256 of the cookie's session id, so a
-- copy of the database does not hand out live sessions. `user_id` lets "log out
-- everywhere" and a password reset end every session of a user.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER REFERENCES users(id) ON DELETE CASCADE,
    data       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expiry ON sessions(expires_at);

-- API tokens: only SHA-256 of the token is kept (tokens are 256-bit random, so a
-- fast hash is enough); `prefix` is shown so the operator can tell them apart.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    read_only    INTEGER NOT NULL DEFAULT 0,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Who did what, when: every state-changing request and every export by a user or
-- token, plus CLI actions. Append-only.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT '',
    status  INTEGER NOT NULL DEFAULT 0,
    ip      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log(at);
