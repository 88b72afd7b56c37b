"""Validating responses against Jaeger's API v3 OpenAPI document (shared/reference/).

The document lives in the shared/ directory beside the repository (`<repo>/../shared`). A
fresh clone elsewhere (CI clones into a temporary directory) finds it beside the repository
it was cloned from, and O11YKIT_JAEGER_OPENAPI names it anywhere else. A missing document
fails the tests that need it: skipping would let the API drift unnoticed.
"""

from __future__ import annotations

import copy
import functools
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
IN_SHARED = Path("shared") / "reference" / "jaeger-api-v3" / "query_service.openapi.yaml"


def spec_candidates() -> list[Path]:
    """Where the document may be, in order: the setting, beside this checkout, beside origin."""
    candidates = [REPO.parent / IN_SHARED]
    if named := os.environ.get("O11YKIT_JAEGER_OPENAPI"):
        candidates.insert(0, Path(named))
    origin = subprocess.run(
        ["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    cloned_from = Path(origin.removeprefix("file://")) if origin else None
    if cloned_from is not None and cloned_from.exists():  # a clone of a local repository
        candidates.append(cloned_from.resolve().parent / IN_SHARED)
    return candidates


@functools.cache
def components() -> dict[str, Any]:
    candidates = spec_candidates()
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise AssertionError(
            "Jaeger API v3 OpenAPI document not found at any of "
            f"{', '.join(map(str, candidates))}: the tests expect the shared/ directory beside "
            "the repository or beside the one it was cloned from "
            "(<repo>/../shared/reference/jaeger-api-v3/), or O11YKIT_JAEGER_OPENAPI"
        )
    return yaml.safe_load(found.read_text(encoding="utf-8"))["components"]


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
    _validator(schema_name, strict).validate(document)


@functools.cache
def _validator(schema_name: str, strict: bool) -> jsonschema.Draft202012Validator:
    # One a schema: building it (copying and closing every schema of the document) took
    # longer than the validation, and hundreds of answers are checked.
    schemas = copy.deepcopy(components())
    if strict:
        schemas = _closed(schemas)
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": schemas}
    return jsonschema.Draft202012Validator(root)


def validate_traces(body: Any) -> None:
    """GET /api/v3/traces[/{id}]: TracesData inside Jaeger's {"result": ...} envelope."""
    assert isinstance(body, dict) and set(body) == {"result"}, body
    validate(body["result"], "opentelemetry.proto.trace.v1.TracesData")


def validate_error(body: Any, code: int) -> None:
    """google.rpc.Status, left open: the store adds Jaeger's gateway `error` object to it."""
    validate(body, "google.rpc.Status", strict=False)
    assert body["code"] == code and body["message"], body
    assert body["error"]["message"] == body["message"], body
