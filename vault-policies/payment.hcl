# payment: gateway credentials and webhook secrets only.
path "secret/data/gaitpay/payment/*" {
  capabilities = ["read"]
}
