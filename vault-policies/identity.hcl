# identity: owns customers' keys. Creates, uses, rotates and destroys the per-customer
# Transit keys (customer-*), computes lookup and audit MACs, and reads the
# template-transform secret (provisioning creates it; nobody here can change it).
path "transit/keys/customer-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "transit/keys/customer-*/rotate" {
  capabilities = ["update"]
}
path "transit/keys/customer-*/config" {
  capabilities = ["update"]
}
path "transit/encrypt/customer-*" {
  capabilities = ["update"]
}
path "transit/decrypt/customer-*" {
  capabilities = ["update"]
}
path "transit/rewrap/customer-*" {
  capabilities = ["update"]
}
path "transit/datakey/plaintext/customer-*" {
  capabilities = ["update"]
}
path "transit/hmac/lookup*" {
  capabilities = ["update"]
}
path "transit/hmac/audit*" {
  capabilities = ["update"]
}
path "transit/verify/audit*" {
  capabilities = ["update"]
}
path "secret/data/gaitpay/template-transform" {
  capabilities = ["read"]
}
path "secret/data/gaitpay/identity/audit-head" {
  capabilities = ["create", "read", "update"]
}
