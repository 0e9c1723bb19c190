-- Pruuv schema, version 1. Times are Unix milliseconds (UTC) unless named
-- *_timestamp, which keep the sender's RFC 3339 text and offset.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE clients (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    time_zone  TEXT NOT NULL DEFAULT 'UTC',
    currency   TEXT NOT NULL DEFAULT 'GBP',
    created_at BIGINT NOT NULL
);

CREATE TABLE funnels (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id),
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (client_id, name)
);

CREATE TABLE stages (
    id           TEXT PRIMARY KEY,
    funnel_id    TEXT NOT NULL REFERENCES funnels (id),
    name         TEXT NOT NULL,
    position     INTEGER NOT NULL,
    hourly_limit INTEGER NOT NULL DEFAULT 1000,
    created_at   BIGINT NOT NULL,
    UNIQUE (funnel_id, position)
);

-- A stage has one current token and, for a while after a rotation, the one it
-- replaced. Only a keyed hash verifies; the sealed copy lets the dashboard show it.
CREATE TABLE stage_tokens (
    id          TEXT PRIMARY KEY,
    stage_id    TEXT NOT NULL REFERENCES stages (id),
    token_hash  BYTEA NOT NULL UNIQUE,
    sealed      TEXT NOT NULL,
    hint        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX stage_tokens_stage ON stage_tokens (stage_id);

CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    stage_id         TEXT NOT NULL REFERENCES stages (id),
    source           TEXT NOT NULL,
    received_at      BIGINT NOT NULL,
    reference        TEXT NOT NULL,
    item_reference   TEXT,
    utm_source       TEXT,
    utm_medium       TEXT,
    utm_campaign     TEXT,
    utm_content      TEXT,
    utm_term         TEXT,
    gclid            TEXT,
    wbraid           TEXT,
    gbraid           TEXT,
    ttclid           TEXT,
    msclkid          TEXT,
    fbc              TEXT,
    fbp              TEXT,
    click_timestamp  TEXT,
    revenue_micros   BIGINT,
    currency         TEXT,
    data_timestamp   TEXT,
    gender           TEXT,
    age_range        TEXT,
    location_country TEXT,
    location_region  TEXT,
    job_title        TEXT,
    company_size     TEXT,
    industry         TEXT
);
CREATE INDEX events_dedup ON events (stage_id, reference, received_at);

-- One counter per stage and UTC clock hour: the authoritative hourly limit.
CREATE TABLE rate_buckets (
    stage_id     TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (stage_id, window_start)
);
