"""Saved payment tokens at the local gateways, made the way the shopper app makes them
(the gateways' own SDKs), for the demo and the tests. Test card numbers follow each gateway's
conventions: 4242 4242 4242 4242 captures; Stripe's 4000 0000 0000 0341 and a Razorpay
card ending 0341 (or a VPA starting "fail") decline when charged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import razorpay
import stripe

GOOD_CARD = "4242424242424242"
DECLINING_CARD = "4000000000000341"


@dataclass(frozen=True)
class SavedToken:
    gateway: str
    customer_reference: str
    token: str
    last4: str


def stripe_token(api_key: str, api_base: str, email: str, card: str = GOOD_CARD) -> SavedToken:
    client = stripe.StripeClient(api_key, base_addresses={"api": api_base},
                                 http_client=stripe.RequestsClient(timeout=10))
    customer = client.v1.customers.create(params={"email": email})
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2035, "cvc": "123"}})
    client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    return SavedToken("stripe", str(customer.id), str(method.id), card[-4:])


def razorpay_token(key_id: str, key_secret: str, base_url: str, email: str, card: str = GOOD_CARD,
                   vpa: str = "") -> SavedToken:
    client = razorpay.Client(auth=(key_id, key_secret), base_url=base_url)
    customer = client.customer.create({"name": "GaitPay shopper", "email": email, "contact": "9000000000"},
                                      timeout=10)
    body = {"customer_id": customer["id"], "method": "upi", "vpa": vpa} if vpa else \
        {"customer_id": customer["id"], "method": "card",
         "card": {"number": card, "expiry_month": 12, "expiry_year": 2035, "cvv": "123", "name": "Shopper"}}
    token = client.token.create(body, timeout=10)
    return SavedToken("razorpay", str(customer["id"]), str(token["id"]), "" if vpa else card[-4:])


def token_from_stack(env: Mapping[str, str], gateway: str, email: str) -> SavedToken:
    """A good card saved at one of the local stack's gateways (its environment, as in
    HOME/stack.json, names their addresses and keys)."""
    if gateway == "stripe":
        return stripe_token(env["GAITPAY_STRIPE_API_KEY"], env["GAITPAY_STRIPE_API_BASE"], email)
    return razorpay_token(env["GAITPAY_RAZORPAY_KEY_ID"], env["GAITPAY_RAZORPAY_KEY_SECRET"],
                          env["GAITPAY_RAZORPAY_BASE_URL"], email)
