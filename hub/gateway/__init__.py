"""The HTTP gateway (FastAPI on uvicorn)."""
