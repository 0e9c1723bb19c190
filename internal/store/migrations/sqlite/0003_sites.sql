-- Pruuv schema, version 3: sites, the Pixel's public face. A site belongs to
-- one client, has a public key the page's snippet names, and the origins
-- (scheme://host[:port], as browsers send them) allowed to post with it. The
-- Pixel gets an hourly quota per stage of its own, counted in rate_buckets
-- under the key 'pixel:' || stage id, apart from the Webhook API's.

CREATE TABLE sites (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id),
    site_key   TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX sites_client ON sites (client_id);

CREATE TABLE site_origins (
    site_id    TEXT NOT NULL REFERENCES sites (id),
    origin     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (site_id, origin)
);
-- CORS preflights carry no site key: they ask whether any site lists the origin.
CREATE INDEX site_origins_origin ON site_origins (origin);

ALTER TABLE stages ADD COLUMN pixel_hourly_limit INTEGER NOT NULL DEFAULT 1000;
