"""The partner REST gateway: HTTP/JSON in front of the mesh, generated from the protos'
google.api.http annotations, with API keys, tenant scoping and rate limits."""
