"""What every hrsync process uses: settings, the async runner, databases, events, tracing."""
