"""Payments: behaves like an external payment provider (its latency, its declines)."""

from __future__ import annotations

import hashlib
import random
import threading
import time

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from sample_app import settings
from sample_app.runtime import create_app

env = settings.read(default_service="payments")
app, switches = create_app(env)
MEDIAN_MS = 120.0
SECONDARY_MEDIAN_MS = 60.0
DECLINE_SHARE = 0.03
_rng = random.Random(5)
_rng_lock = threading.Lock()


class Charge(BaseModel):
    amount_minor: int
    currency: str
    card: str
    reference: str


def _latency_s(median_ms: float) -> float:
    with _rng_lock:
        return min(2500.0, median_ms * _rng.lognormvariate(0.0, 0.35)) / 1000


def _declined(charge: Charge) -> bool:
    if charge.card == "tok_declined":
        return True
    digest = hashlib.sha256(charge.reference.encode()).digest()
    return digest[0] < 256 * DECLINE_SHARE


@app.post("/charges")
def create_charge(charge: Charge):
    slow = switches.active("provider_latency")
    if slow is not None and slow.fixed:
        time.sleep(_latency_s(SECONDARY_MEDIAN_MS))  # the secondary region
    else:
        extra = slow.param("ms") * slow.intensity / 1000 if slow is not None else 0.0
        time.sleep(_latency_s(MEDIAN_MS) + extra)
    if _declined(charge):
        return JSONResponse({"error": "card declined"}, status_code=402)
    return {"id": hashlib.sha1(charge.reference.encode()).hexdigest()[:16], "status": "captured"}


@app.get("/health")
def health():
    return {"ok": True, "service": env.service.name, "version": env.service.version}
