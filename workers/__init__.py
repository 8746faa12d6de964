"""The Celery app and its thin task shells: decode → run_async(stage) → record → small JSON result."""
