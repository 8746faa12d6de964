"""The extract stage: employees and absences read from the HRIS into the app tables.

`stage.py` declares it; `employees.py` plans key ranges and upserts employees; `absences.py` reads absences
and marks the days to recompute; parameters and shards, row rules, SQL, sources and watermarks beside them.
"""
