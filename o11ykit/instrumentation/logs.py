"""Log correlation: trace_id, span_id, tenant.id and the user on every log record.

Through the log record factory, so no handler, formatter or level is touched.
"""

from __future__ import annotations

import logging

from o11ykit.context import correlating_record_factory


def enable() -> str:
    current = logging.getLogRecordFactory()
    if not hasattr(current, "o11ykit_previous"):
        logging.setLogRecordFactory(correlating_record_factory(current))
    return "active (record attributes trace_id, span_id, tenant.id, enduser.id)"


def disable() -> None:
    current = logging.getLogRecordFactory()
    previous = getattr(current, "o11ykit_previous", None)
    if previous is not None:
        logging.setLogRecordFactory(previous)
