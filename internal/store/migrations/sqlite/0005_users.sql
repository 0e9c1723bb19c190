-- Pruuv schema, version 5: dashboard users and their sessions, the login
-- limiter's counters, admin API keys and the audit trail of admin actions.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,  -- trimmed and lower-cased
    password_hash TEXT NOT NULL,         -- argon2id in PHC string form
    created_at    INTEGER NOT NULL
);

-- Only a keyed hash of the session id is stored: a database dump does not
-- let anyone log in. Several processes on one PostgreSQL share the rows.
CREATE TABLE sessions (
    id_hash      BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL    -- absolute expiry
);
CREATE INDEX sessions_user ON sessions (user_id);

-- One counter of login attempts per scope ("email" or "ip"), key and fixed
-- window; incremented atomically, so the limit is exact across processes.
CREATE TABLE login_attempts (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (scope, key, window_start)
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key_hash     BLOB NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    created_by   TEXT NOT NULL,          -- a user's email or "cli"
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Who revealed or rotated a token, created or revoked a key, and when.
CREATE TABLE admin_audit (
    id      TEXT PRIMARY KEY,            -- UUIDv7, in time order
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,               -- "user:<email>", "apikey:<id>" or "cli"
    action  TEXT NOT NULL,
    target  TEXT NOT NULL
);
