"""Adapters from the edge to the outside world (the mesh, cameras, local storage)."""
