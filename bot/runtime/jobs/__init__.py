"""The scheduled jobs: the morning report, the alert check, the nightly anonymisation."""
