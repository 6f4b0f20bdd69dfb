-- Payments, the gateway objects prepared for them, refunds, webhooks seen, and a
-- double-entry ledger whose transactions must balance at commit.

CREATE TABLE payment.payments (
    payment_id        uuid PRIMARY KEY,
    -- At most one payment, hence at most one capture, per key: the primary guarantee.
    idempotency_key   text NOT NULL UNIQUE,
    fingerprint       text NOT NULL,
    session_id        uuid NOT NULL,
    -- NULL once the customer is erased: amounts stay (tax records), the link goes.
    customer_id       uuid,
    store_id          text NOT NULL,
    amount_minor      bigint NOT NULL CHECK (amount_minor > 0),
    currency          text NOT NULL,
    state             text NOT NULL CHECK (state IN ('processing', 'captured', 'declined', 'requires_action',
                          'unknown', 'failed', 'partially_refunded', 'refunded', 'disputed')),
    gateway           text NOT NULL DEFAULT '',
    gateway_reference text NOT NULL DEFAULT '',
    refunded_minor    bigint NOT NULL DEFAULT 0,
    failure_reason    text NOT NULL DEFAULT '',
    attempts          jsonb NOT NULL DEFAULT '[]',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    captured_at       timestamptz,
    CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor)
);
CREATE INDEX payments_unsettled ON payment.payments (updated_at) WHERE state IN ('processing', 'unknown');
CREATE INDEX payments_customer ON payment.payments (customer_id);

CREATE TABLE payment.gateway_refs (
    payment_id  uuid NOT NULL REFERENCES payment.payments (payment_id),
    gateway     text NOT NULL,
    reference   text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payment_id, gateway)
);

CREATE TABLE payment.refunds (
    refund_id          uuid PRIMARY KEY,
    payment_id         uuid NOT NULL REFERENCES payment.payments (payment_id),
    request_id         text NOT NULL UNIQUE,
    fingerprint        text NOT NULL,
    amount_minor       bigint NOT NULL CHECK (amount_minor > 0),
    gateway_reference  text NOT NULL DEFAULT '',
    state              text NOT NULL CHECK (state IN ('pending', 'processed', 'failed')),
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment ON payment.refunds (payment_id);

CREATE TABLE payment.webhook_events (
    event_id     text PRIMARY KEY,
    gateway      text NOT NULL,
    kind         text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payment.ledger_transactions (
    txn_id      text PRIMARY KEY,  -- capture:<payment>, refund:<refund>, dispute:<id>: posted once
    payment_id  uuid NOT NULL REFERENCES payment.payments (payment_id),
    posted_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payment.ledger_entries (
    entry_id      bigserial PRIMARY KEY,
    txn_id        text NOT NULL REFERENCES payment.ledger_transactions (txn_id),
    account       text NOT NULL,
    debit_minor   bigint NOT NULL DEFAULT 0 CHECK (debit_minor >= 0),
    credit_minor  bigint NOT NULL DEFAULT 0 CHECK (credit_minor >= 0),
    CHECK ((debit_minor = 0) <> (credit_minor = 0))
);
CREATE INDEX ledger_entries_txn ON payment.ledger_entries (txn_id);

-- Checked at commit, so a transaction can add its lines one by one but never commit them
-- unbalanced, whatever code writes them.
CREATE FUNCTION payment.ledger_txn_balances() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    debits bigint;
    credits bigint;
BEGIN
    SELECT COALESCE(sum(debit_minor), 0), COALESCE(sum(credit_minor), 0) INTO debits, credits
      FROM payment.ledger_entries WHERE txn_id = NEW.txn_id;
    IF debits <> credits THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: debits % credits %', NEW.txn_id, debits, credits
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledger_balanced AFTER INSERT OR UPDATE ON payment.ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION payment.ledger_txn_balances();

-- Ledger entries are facts: corrections are new transactions, never edits.
CREATE FUNCTION payment.ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON payment.ledger_entries
    FOR EACH ROW EXECUTE FUNCTION payment.ledger_append_only();
