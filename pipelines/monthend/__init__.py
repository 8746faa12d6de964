"""Month end (DESIGN §11), not a stage: the exceptions a day raises, the decisions on them, periods and their
close/reopen, and the store the merge refreshes. The merge, the export stage and the operator services use it.
"""
