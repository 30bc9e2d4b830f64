"""Buttons and their callback data, one module per feature (64 bytes of callback data at most)."""
