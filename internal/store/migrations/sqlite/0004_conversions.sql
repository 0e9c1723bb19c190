-- Pruuv schema, version 4: sending conversions back to the ad platforms.
-- See docs/conversions.md for the queue these tables make up.

-- A client's account on one platform. settings holds the plain settings as a
-- JSON object; sealed holds the secret ones, encrypted with the install's
-- secret key and bound to this row's id; hints shows them without revealing.
CREATE TABLE connections (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id),
    platform   TEXT NOT NULL,
    settings   TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    hints      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (client_id, platform)
);

-- What a stage sends to a platform: a Meta or TikTok event name, a Google
-- conversion action, a Microsoft conversion goal.
CREATE TABLE stage_mappings (
    stage_id   TEXT NOT NULL REFERENCES stages (id),
    platform   TEXT NOT NULL,
    event_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (stage_id, platform)
);

-- Written by ingestion in the event's own transaction; the planner turns each
-- row into conversion_sends rows and deletes it.
-- WITHOUT ROWID: one b-tree to insert into and delete from, not two.
CREATE TABLE conversion_outbox (
    event_id   TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- One event delivered (or not) to one platform: the queue and the audit log.
CREATE TABLE conversion_sends (
    event_id        TEXT NOT NULL REFERENCES events (id),
    platform        TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    stage_id        TEXT NOT NULL,
    status          TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    http_status     INTEGER,
    message         TEXT NOT NULL DEFAULT '',
    next_attempt_at INTEGER,
    last_attempt_at INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    PRIMARY KEY (event_id, platform)
) WITHOUT ROWID;
CREATE INDEX conversion_sends_due ON conversion_sends (next_attempt_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX conversion_sends_updated ON conversion_sends (updated_at);
CREATE INDEX conversion_sends_client ON conversion_sends (client_id, updated_at);

-- Every request made for a send, with the platform's answer.
CREATE TABLE conversion_attempts (
    id          TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL,
    platform    TEXT NOT NULL,
    at          INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    http_status INTEGER,
    message     TEXT NOT NULL,
    summary     TEXT NOT NULL,
    lease_owner TEXT NOT NULL
);
CREATE INDEX conversion_attempts_send ON conversion_attempts (event_id, platform, at);
