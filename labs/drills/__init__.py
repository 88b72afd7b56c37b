"""Mock incident drills: blind, timed, mitigated from telemetry, with a postmortem draft."""
