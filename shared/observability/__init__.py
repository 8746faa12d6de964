"""Logging and stage spans, Prometheus metrics, credentials masked."""
