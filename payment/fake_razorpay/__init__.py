"""A fake Razorpay API server for the local stack and tests (no such fake exists on any
registry). It speaks Razorpay's documented wire format: HTTP basic auth with key id and
secret, JSON entities, and Razorpay's error envelope. The payment issue grows it with the
payment, capture, refund and webhook endpoints the adapter uses."""
