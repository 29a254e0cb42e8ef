"""`openline report` (being written)."""
