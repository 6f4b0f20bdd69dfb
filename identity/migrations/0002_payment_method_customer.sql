-- Both gateways charge a saved token only together with the gateway's customer it belongs to.
ALTER TABLE identity.payment_methods ADD COLUMN gateway_customer text NOT NULL DEFAULT '';
