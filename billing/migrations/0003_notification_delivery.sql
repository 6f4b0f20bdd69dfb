-- Delivery of the notification outbox: the relay claims due rows (FOR UPDATE SKIP LOCKED, so
-- replicas never send one twice), sends through the channel's provider, and records the
-- outcome; a failed attempt is retried later, up to a limit, then marked failed.
ALTER TABLE billing.outbox
    ADD COLUMN attempts         integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_error       text,
    ADD COLUMN failed_at        timestamptz;
CREATE INDEX outbox_due ON billing.outbox (channel, next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
