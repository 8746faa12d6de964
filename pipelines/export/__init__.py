"""Month end (DESIGN §11) as pure parts: the exceptions a day raises, the decisions on them, and the
export files of a closed month.

Nothing here touches a database or Celery: the callers hand in typed day rows (`ExportDay`, ordered by
employee_no then date) and stored decisions, and get back records to store or files written to a
directory they name (`write_month_export`).
"""
