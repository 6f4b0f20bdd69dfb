# edge: its own configuration only (the hot cache arrives sealed for its device key).
path "secret/data/gaitpay/edge/*" {
  capabilities = ["read"]
}
