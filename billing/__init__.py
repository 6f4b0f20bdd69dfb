"""Billing service: store sessions, carts and bills."""
