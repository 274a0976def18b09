"""Real-time customer profile pipeline: ingest -> identity -> profile -> publish."""

__version__ = "0.1.0"
