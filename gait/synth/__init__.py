"""The synthetic walker: our own training data (no real person's walk trains a shipped model)."""
