"""The notify stage: the outbox built for the merged days, sent in batches; and the failure notice.

`stage.py` declares it; the outbox and the sending are `pipelines.mail` (the export stage mails through it too).
"""
