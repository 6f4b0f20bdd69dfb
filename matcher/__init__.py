"""Matcher service: keypoint windows -> gait embeddings -> open-set identification."""
