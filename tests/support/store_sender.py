"""Sends numbered OTLP batches one after another and records each one the store acknowledged.

    python -m tests.support.store_sender --url URL --acked FILE [--batches N] [--batch-spans M]

Batch b holds spans of traces b*M+1 .. b*M+M. A line "b" is appended to FILE (and flushed)
as soon as the store answers 200, so after a crash the file says exactly what was promised.
"""

from __future__ import annotations

import argparse
import http.client
import sys
from urllib.parse import urlsplit

from tests.support.store_data import many


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--acked", required=True)
    parser.add_argument("--batches", type=int, default=100_000)
    parser.add_argument("--batch-spans", type=int, default=200)
    args = parser.parse_args()
    url = urlsplit(args.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    with open(args.acked, "a", encoding="utf-8") as acked:
        for batch in range(args.batches):
            body = many(args.batch_spans, first_trace=batch * args.batch_spans + 1)
            try:
                connection.request(
                    "POST",
                    url.path,
                    body.SerializeToString(),
                    {"Content-Type": "application/x-protobuf"},
                )
                response = connection.getresponse()
                response.read()
            except OSError:
                return 0  # the store is gone: what was acknowledged is in the file
            if response.status != 200:
                return 1
            acked.write(f"{batch}\n")
            acked.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
