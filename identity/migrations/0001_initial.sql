-- Identity's own schema: customers, consent, protected templates, payment-method tokens,
-- stores and cameras, idempotency records and the audit chain. Personal fields are Vault
-- Transit ciphertexts under the customer's own key; lookups use keyed hashes.
CREATE TABLE identity.customers (
    customer_id      uuid PRIMARY KEY,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'erased')),
    display_name_ct  text NOT NULL DEFAULT '',
    phone_ct         text NOT NULL DEFAULT '',
    phone_hint       text NOT NULL DEFAULT '',
    phone_lookup     text UNIQUE,
    email_ct         text NOT NULL DEFAULT '',
    email_lookup     text UNIQUE,
    home_region      text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    erased_at        timestamptz
);

CREATE TABLE identity.consents (
    consent_id      bigserial PRIMARY KEY,
    customer_id     uuid NOT NULL REFERENCES identity.customers (customer_id),
    policy_version  text NOT NULL,
    purposes        text[] NOT NULL,
    retention_days  integer NOT NULL CHECK (retention_days BETWEEN 1 AND 3650),
    jurisdiction    text NOT NULL,
    given_at        timestamptz NOT NULL,
    withdrawn_at    timestamptz
);
CREATE INDEX consents_customer ON identity.consents (customer_id);

CREATE TABLE identity.templates (
    template_id     text PRIMARY KEY,
    customer_id     uuid NOT NULL REFERENCES identity.customers (customer_id),
    model_version   text NOT NULL,
    transform       text NOT NULL,
    quality         real NOT NULL,
    wrapped_key     text NOT NULL,
    nonce           bytea NOT NULL,
    ciphertext      bytea NOT NULL,
    source          text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX templates_customer ON identity.templates (customer_id);

CREATE TABLE identity.payment_methods (
    payment_method_id  uuid PRIMARY KEY,
    customer_id        uuid NOT NULL REFERENCES identity.customers (customer_id),
    kind               text NOT NULL CHECK (kind IN ('card', 'upi_mandate')),
    gateway            text NOT NULL CHECK (gateway IN ('stripe', 'razorpay')),
    gateway_token      text NOT NULL,
    last4              text NOT NULL DEFAULT '',
    brand              text NOT NULL DEFAULT '',
    upi_handle_masked  text NOT NULL DEFAULT '',
    is_default         boolean NOT NULL DEFAULT true,
    per_visit_limit_paise bigint NOT NULL DEFAULT 1000000,
    daily_limit_paise     bigint NOT NULL DEFAULT 2500000,
    created_at         timestamptz NOT NULL DEFAULT now(),
    removed_at         timestamptz
);
CREATE INDEX payment_methods_customer ON identity.payment_methods (customer_id);

CREATE TABLE identity.stores (
    store_id     text PRIMARY KEY,
    retailer_id  text NOT NULL,
    name         text NOT NULL,
    region       text NOT NULL
);

CREATE TABLE identity.cameras (
    camera_id   text PRIMARY KEY,
    store_id    text NOT NULL REFERENCES identity.stores (store_id),
    role        text NOT NULL CHECK (role IN ('entrance', 'exit', 'aisle')),
    height_m    real NOT NULL,
    tilt_deg    real NOT NULL
);

-- One row per mutating request id: the first outcome is replayed to retries; the same id
-- with another request is refused.
CREATE TABLE identity.idempotency (
    request_id   uuid PRIMARY KEY,
    operation    text NOT NULL,
    fingerprint  text NOT NULL,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Append-only chain: mac = HMAC(Vault audit key, previous mac || this entry's canonical
-- bytes). Editing or deleting a row breaks every later link, and recomputing the links
-- needs the key, which never leaves Vault.
CREATE TABLE identity.audit_log (
    sequence     bigint PRIMARY KEY,
    at           timestamptz NOT NULL,
    action       text NOT NULL,
    customer_id  text NOT NULL DEFAULT '',
    actor        text NOT NULL DEFAULT '',
    attributes   jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_mac     text NOT NULL,
    mac          text NOT NULL
);
