"""What every hrsync process uses, by concern: `runtime` (the async runner), `database`, `records` (executions),
`events` (the event plane), `observability` (logs, traces, metrics), `config` (settings, errors, policy).

Nothing here imports the other packages (`pipelines`, `workers`, `scheduler`, `cli`, `web`).
"""
