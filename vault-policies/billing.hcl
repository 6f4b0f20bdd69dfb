# billing: its own configuration only; no keys, no templates, no transform.
path "secret/data/gaitpay/billing/*" {
  capabilities = ["read"]
}
