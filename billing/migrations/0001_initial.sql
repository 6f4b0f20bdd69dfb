-- Store sessions, the events that made them, catalogues, idempotent requests, receipts and
-- the notification outbox.

CREATE TABLE billing.sessions (
    session_id             uuid PRIMARY KEY,
    store_id               text NOT NULL,
    track_id               text NOT NULL,
    -- NULL for strangers, and once the customer is erased.
    customer_id            uuid,
    false_match_probability double precision NOT NULL DEFAULT 1,
    state                  text NOT NULL CHECK (state IN ('open', 'awaiting_confirmation', 'charging', 'paid',
                               'staff_checkout', 'cancelled', 'payment_link')),
    decision_reason        text NOT NULL DEFAULT '',
    lines                  jsonb NOT NULL DEFAULT '[]',
    total_minor            bigint NOT NULL DEFAULT 0,
    entered_at             timestamptz,
    exited_at              timestamptz,
    payment_id             text NOT NULL DEFAULT '',
    confirmation_deadline  timestamptz,
    active_elsewhere       boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    -- One session per tracked person per store: replays can't open a second one.
    UNIQUE (store_id, track_id)
);
CREATE INDEX sessions_customer_open ON billing.sessions (customer_id) WHERE exited_at IS NULL;
CREATE INDEX sessions_due ON billing.sessions (state, updated_at) WHERE state IN ('open', 'awaiting_confirmation', 'charging');

CREATE TABLE billing.events (
    event_id     text PRIMARY KEY,
    kind         text NOT NULL,
    store_id     text NOT NULL,
    session_id   uuid,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE billing.catalogue (
    store_id          text NOT NULL,
    sku               text NOT NULL,
    name              text NOT NULL,
    unit_price_minor  bigint NOT NULL CHECK (unit_price_minor >= 0),
    gst_rate_bp       integer NOT NULL CHECK (gst_rate_bp BETWEEN 0 AND 4000),
    discount_bp       integer NOT NULL CHECK (discount_bp BETWEEN 0 AND 10000),
    PRIMARY KEY (store_id, sku)
);

CREATE TABLE billing.requests (
    request_id   text PRIMARY KEY,
    operation    text NOT NULL,
    fingerprint  text NOT NULL,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE billing.receipts (
    session_id  uuid PRIMARY KEY REFERENCES billing.sessions (session_id),
    media_type  text NOT NULL,
    document    bytea NOT NULL
);

-- Notifications leave through this outbox (a relay hands them to the email/SMS/push
-- provider), written in the same transaction as the change they announce.
CREATE TABLE billing.outbox (
    notification_id  bigserial PRIMARY KEY,
    session_id       uuid NOT NULL,
    customer_id      uuid,
    channel          text NOT NULL CHECK (channel IN ('email', 'sms', 'push', 'staff')),
    subject          text NOT NULL,
    body             text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
