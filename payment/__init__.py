"""Payment service: charges through Stripe and Razorpay, ledger, refunds."""
