-- Pruuv schema, version 2: the optional signals that raise the ad platforms'
-- match rates. Email and phone are never stored in clear, only as the SHA-256
-- hashes the platforms expect (two normal forms each; see event/identity.go).

ALTER TABLE events ADD COLUMN client_ip_address TEXT;
ALTER TABLE events ADD COLUMN client_user_agent TEXT;
ALTER TABLE events ADD COLUMN event_source_url TEXT;
ALTER TABLE events ADD COLUMN email_sha256 TEXT;
ALTER TABLE events ADD COLUMN email_google_sha256 TEXT;
ALTER TABLE events ADD COLUMN phone_sha256 TEXT;
ALTER TABLE events ADD COLUMN phone_meta_sha256 TEXT;
