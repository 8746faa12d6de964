"""The operator's services, for the CLI and the console alike: the one place that launches work on their behalf.

`executions` (replay, cancel, dead-letter replay, the audit), `corrections` (punch corrections and their
recompute), `deciding` and `closing` (month-end decisions, periods, close/reopen), `launching` (a close's
export without an event plane), `event_requests` (events hrsync asks for itself). `cli/` and `web/` call
these and never `workers/`; these call `workers/`, `pipelines/` and `shared/`.
"""
