"""Execution records, in one home: the `executions` and `execution_stages` rows, their statuses, lineage.

- `status`: the statuses (`StrEnum`s: the values are the contract's strings);
- `shards`: every kind of shard name (`@plan`, `punches:…`, day shards, …), named once;
- `executions`: every write of a workflow's run (insert, claim, stage start and end, finish, cancel);
- `queries`: every read (one execution, its stage rows, its lineage, listings) and pruning;
- `views`: the shapes operators see (`--json`, the console's `/api/`).
"""
