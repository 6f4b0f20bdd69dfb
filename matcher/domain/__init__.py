"""The matcher's domain core: no gRPC, no Milvus, no SQL in here."""
