-- The partner event feed: a transactional outbox, written with the change it announces and
-- read in commit order by the gateway (mesh.postgres.EventFeed), which turns it into webhooks.
CREATE TABLE billing.partner_events (
    sequence     bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    -- The writing transaction: the feed is read below the oldest one still running.
    txid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_type   text NOT NULL,
    store_id     text NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The changed row right after the change.
    snapshot     jsonb NOT NULL
);
CREATE INDEX partner_events_feed ON billing.partner_events (txid, sequence);
