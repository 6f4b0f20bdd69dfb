-- Partner webhooks: endpoints (no signing secret is stored; it is derived from the master
-- key and the endpoint id), each event's body once, one delivery per (endpoint, event), and
-- how far the gateway has read each service's event feed.
CREATE TABLE gateway.webhook_endpoints (
    endpoint_id  uuid PRIMARY KEY,
    store_id     text NOT NULL,
    retailer_id  text NOT NULL,
    url          text NOT NULL,
    event_types  text[] NOT NULL DEFAULT '{}',  -- empty: every type
    generation   integer NOT NULL DEFAULT 1,    -- of the derived signing secret
    created_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    -- The call that made it: a replay finds it instead of making another.
    request_id   uuid NOT NULL UNIQUE,
    fingerprint  text NOT NULL
);
CREATE INDEX webhook_endpoints_store ON gateway.webhook_endpoints (store_id) WHERE deleted_at IS NULL;

CREATE TABLE gateway.webhook_events (
    event_id    uuid PRIMARY KEY,
    event_type  text NOT NULL,
    store_id    text NOT NULL,
    payload     bytea NOT NULL,  -- the exact bytes signed and sent, the same on every retry
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gateway.webhook_deliveries (
    delivery_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id      uuid NOT NULL REFERENCES gateway.webhook_endpoints (endpoint_id),
    event_id         uuid NOT NULL REFERENCES gateway.webhook_events (event_id),
    state            text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    last_status      integer NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- While an attempt is in flight this is its lease's end: another replica leaves it alone.
    next_attempt_at  timestamptz,
    delivered_at     timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON gateway.webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON gateway.webhook_deliveries (endpoint_id, created_at DESC);

CREATE TABLE gateway.feed_cursors (
    feed    text PRIMARY KEY,
    cursor  text NOT NULL
);
