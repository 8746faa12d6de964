"""The export stage (DESIGN §11): the files of a closed month's version, and their mail to payroll.

`stage.py` declares it; the files are pure parts (`rows`, `layout`, `cells`, `csvfile`, `workbook`, `totals`,
`manifest`, `write`; `dayrows` spells the days, the hot path) over typed day rows that `source.py` streams;
`version.py` writes a version.
"""
