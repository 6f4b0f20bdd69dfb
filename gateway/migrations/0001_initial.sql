-- Partner API keys: only a SHA-256 of each key is kept.
CREATE TABLE gateway.api_keys (
    key_id       text PRIMARY KEY,
    retailer_id  text NOT NULL,
    store_ids    text[] NOT NULL,
    secret_hash  text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked      boolean NOT NULL DEFAULT false,
    rate_per_s   integer NOT NULL CHECK (rate_per_s > 0),
    burst        integer NOT NULL CHECK (burst > 0),
    replaced_by  text NOT NULL DEFAULT '',
    -- The admin call that made the key: a replay finds it instead of minting another.
    request_id   uuid UNIQUE
);
CREATE INDEX api_keys_retailer ON gateway.api_keys (retailer_id);
