"""The gateway's domain: partner API keys and their rate limits. No HTTP, gRPC or SQL here."""
