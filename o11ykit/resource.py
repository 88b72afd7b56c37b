"""The resource: what service, which version, where it runs. Files and environment only."""

from __future__ import annotations

import os
import re
import socket
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from opentelemetry.sdk.resources import Resource

from o11ykit.config import Settings

# Commit SHAs as common CI systems and platforms expose them.
CI_COMMIT_VARIABLES = (
    "GITHUB_SHA",
    "CI_COMMIT_SHA",
    "BUILDKITE_COMMIT",
    "CIRCLE_SHA1",
    "GIT_COMMIT",
    "TRAVIS_COMMIT",
    "BITBUCKET_COMMIT",
    "SOURCE_VERSION",
    "VERCEL_GIT_COMMIT_SHA",
    "RENDER_GIT_COMMIT",
    "HEROKU_SLUG_COMMIT",
)
_CONTAINER_ID = re.compile(r"(?:docker|containerd|crio|libpod|cri-containerd)[-/:]([0-9a-f]{64})")
_CONTAINER_ID_V2 = re.compile(r"/containers/([0-9a-f]{64})/")

_identity: tuple[int, str] = (os.getpid(), str(uuid.uuid4()))


def process_identity() -> tuple[int, str]:
    """This process's pid and service.instance.id; a forked child gets a new id."""
    global _identity
    pid = os.getpid()
    if _identity[0] != pid:
        _identity = (pid, str(uuid.uuid4()))
    return _identity


def default_service_name() -> str:
    program = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return f"unknown_service:{program or 'python'}"


def detect_version(service_name: str, environ: Mapping[str, str]) -> str | None:
    from importlib import metadata  # only here: it costs several ms to import

    try:
        return metadata.version(service_name)
    except (metadata.PackageNotFoundError, ValueError):
        pass
    for variable in CI_COMMIT_VARIABLES:
        sha = environ.get(variable, "").strip()
        if sha:
            return sha[:12]
    return None


def detect_container_id(proc: Path = Path("/proc/self")) -> str | None:
    for name, pattern in (("cgroup", _CONTAINER_ID), ("mountinfo", _CONTAINER_ID_V2)):
        try:
            found = pattern.search((proc / name).read_text(errors="replace"))
        except OSError:
            continue
        if found:
            return found.group(1)
    return None


def build_resource(settings: Settings, environ: Mapping[str, str] | None = None) -> Resource:
    environ = os.environ if environ is None else environ
    service_name = settings.service_name or default_service_name()
    pid, instance_id = process_identity()
    attributes: dict[str, str | int] = {
        **settings.resource_attributes,
        "service.name": service_name,
        "deployment.environment.name": settings.environment,
        "service.instance.id": instance_id,
        "host.name": socket.gethostname(),
        "process.pid": pid,
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": ".".join(map(str, sys.version_info[:3])),
        "telemetry.sdk.language": "python",
        "telemetry.distro.name": "o11ykit",
    }
    attributes.pop("deployment.environment", None)
    version = settings.service_version or detect_version(service_name, environ)
    if version:
        attributes["service.version"] = version
    container_id = detect_container_id()
    if container_id:
        attributes["container.id"] = container_id
    return Resource(attributes)
