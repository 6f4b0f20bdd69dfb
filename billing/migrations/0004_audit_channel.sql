-- Identifications made at the edge while the matcher was out of reach reach identity's audit
-- trail through the outbox (channel 'audit'), written with the event that carried them.
ALTER TABLE billing.outbox DROP CONSTRAINT outbox_channel_check;
ALTER TABLE billing.outbox ADD CONSTRAINT outbox_channel_check
    CHECK (channel IN ('email', 'sms', 'push', 'staff', 'audit'));
