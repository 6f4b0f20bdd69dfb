"""Readers of real walking data, for evaluation only (see each module's licence note)."""
