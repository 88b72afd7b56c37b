"""One folder per service: its FastAPI app, its models, its clients."""
