"""The HRIS side of the extract stage: parameters and shards, row rules, SQL, sources and watermarks.

The stage itself (`plan_extract_shards`, `extract_employees`) lives in `pipelines.hris_extract`.
"""
