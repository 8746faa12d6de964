"""The operator console (`hrsync web`, DESIGN §10): a FastAPI app with server-rendered pages and `/api/` JSON."""
