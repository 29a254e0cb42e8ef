"""Adapters to the outside world: storage, station home files, the peer transport."""
