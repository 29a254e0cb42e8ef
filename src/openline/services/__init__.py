"""Application services: one module per capability, each use case one transaction."""
