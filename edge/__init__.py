"""Edge service: cameras -> pose tracks -> gait windows streamed to the mesh; works offline."""
