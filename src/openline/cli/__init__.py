"""The `openline` command: a thin layer over the station's API and services."""
