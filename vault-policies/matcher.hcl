# matcher: applies the template transform to query embeddings. It never sees a customer
# key: it can neither decrypt templates nor destroy keys.
path "secret/data/gaitpay/template-transform" {
  capabilities = ["read"]
}
