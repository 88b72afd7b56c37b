"""Orders' client for the payment provider: timeout, retries, and which endpoint."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

NORMAL_TIMEOUT_S = 2.0
NORMAL_RETRIES = 1
BACKOFF_S = 0.2


@dataclass(frozen=True)
class Policy:
    timeout_s: float = NORMAL_TIMEOUT_S
    retries: int = NORMAL_RETRIES
    backoff_s: float = BACKOFF_S


class PaymentError(Exception):
    """The charge could not be made: the provider was unreachable or kept timing out."""


def charge(client: httpx.Client, url: str, body: dict, policy: Policy) -> httpx.Response:
    """POST the charge, retrying timeouts and refused connections as the policy says.
    Every attempt carries the same reference, the idempotency key a real provider needs."""
    attempt = 0
    while True:
        try:
            return client.post(url, json=body, timeout=policy.timeout_s)
        except (httpx.TimeoutException, httpx.ConnectError) as exc:
            if attempt >= policy.retries:
                raise PaymentError(
                    f"payment provider: {type(exc).__name__} after {attempt + 1} attempt(s)"
                ) from exc
            attempt += 1
            if policy.backoff_s:
                time.sleep(policy.backoff_s * attempt)
