"""Settings, the self-check, errors and exit codes, the retry policy, source deadlines."""
