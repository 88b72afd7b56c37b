"""Validating responses against Jaeger's API v3 OpenAPI document (shared/reference/).

The document lives beside the repository (`<repo>/../shared`), as in CI's checkout. A missing
document fails the tests that need it: skipping would let the API drift unnoticed.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO.parent / "shared" / "reference" / "jaeger-api-v3" / "query_service.openapi.yaml"


@functools.cache
def components() -> dict[str, Any]:
    if not SPEC.is_file():
        raise AssertionError(
            f"Jaeger API v3 OpenAPI document not found at {SPEC}: the tests expect the shared/ "
            "directory beside the repository (<repo>/../shared/reference/jaeger-api-v3/)"
        )
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))["components"]


def _closed(schema: Any) -> Any:
    """Every object schema with declared properties refuses undeclared ones.

    The document leaves objects open, which would accept a misspelt field (`traceID`) without
    a word; closing them makes the check mean something.
    """
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


def validate(document: Any, schema_name: str, *, strict: bool = True) -> None:
    """Raise jsonschema.ValidationError unless `document` fits `#/components/schemas/<name>`."""
    schemas = copy.deepcopy(components())
    if strict:
        schemas = _closed(schemas)
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": schemas}
    jsonschema.Draft202012Validator(root).validate(document)


def validate_traces(body: Any) -> None:
    """GET /api/v3/traces[/{id}]: TracesData inside Jaeger's {"result": ...} envelope."""
    assert isinstance(body, dict) and set(body) == {"result"}, body
    validate(body["result"], "opentelemetry.proto.trace.v1.TracesData")


def validate_error(body: Any, code: int) -> None:
    """google.rpc.Status, left open: the store adds Jaeger's gateway `error` object to it."""
    validate(body, "google.rpc.Status", strict=False)
    assert body["code"] == code and body["message"], body
    assert body["error"]["message"] == body["message"], body
