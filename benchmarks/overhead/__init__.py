"""Request-overhead benchmark: uninstrumented vs plain OpenTelemetry vs o11ykit."""
