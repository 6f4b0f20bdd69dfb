"""Adapters from the matcher's domain to the outside world."""
