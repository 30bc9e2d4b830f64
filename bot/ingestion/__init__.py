"""How events get in: the HTTP API (auth, body decoding, validation, OpenAPI, /metrics) and the sources
that can only talk Telegram; every source ends in ``pipeline.ingest_items`` and storage's EventWriter."""
