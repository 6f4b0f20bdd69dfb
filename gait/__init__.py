"""The gait engine: walks of 2D keypoints -> normalised signals, gait features, and a
compact embedding that tells people apart by how they walk. Used by matcher, identity and
edge; knows nothing of gRPC or storage."""
