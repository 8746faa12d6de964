"""`hrsync intake`: CloudEvents over HTTP, signed as Standard Webhooks define it, published to `hrsync.events`."""
