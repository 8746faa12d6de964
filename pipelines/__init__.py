"""The stages: plain async functions over typed inputs, with no Celery in them."""
