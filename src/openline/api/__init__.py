"""The station's HTTP interfaces: the local API, the station-to-station endpoints."""
