"""Exporting events to files (CSV, XLSX, Parquet) for the CLI and /export."""
