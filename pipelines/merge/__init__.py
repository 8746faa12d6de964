"""The merge stage: BioStar punches imported in windows, then attendance days computed in shards.

`stage.py` declares it; `biostar.py` reads punch logs; `days.py` imports punches and merges days (the
rules themselves are `pipelines.attendance`, shared with month end and the export).
"""
