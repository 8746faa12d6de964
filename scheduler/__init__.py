"""The APScheduler process that publishes scheduled sync events (and nothing else)."""
