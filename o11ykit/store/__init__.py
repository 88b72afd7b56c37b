"""The embedded local trace store: OTLP in, SQLite, Jaeger API v3 out (docs/store.md)."""
