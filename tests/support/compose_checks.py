"""Readers and checkers for docker-compose.yml, the Collector and Jaeger configs and the
Dockerfile, as the tools themselves would read them (Compose's interpolation, the
Collector's config merge, Docker's .dockerignore rule). Each checker returns a list of
problems, so tests/test_compose.py can feed it both the real files and broken copies."""

from __future__ import annotations

import copy
import fnmatch
import importlib.resources
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import yaml

from sample_app import topology

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
HONEYCOMB_FILE = ROOT / "docker-compose.honeycomb.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COLLECTOR_CONFIG = ROOT / "deploy" / "otelcol.yaml"
COLLECTOR_HONEYCOMB = ROOT / "deploy" / "otelcol.honeycomb.yaml"
JAEGER_CONFIG = ROOT / "deploy" / "jaeger.yaml"
COMPOSE_DOC = ROOT / "docs" / "compose.md"

COLLECTOR, JAEGER, POSTGRES, SEED = "otel-collector", "jaeger", "postgres", "seed"
# Hosts outside compose that an exporter may send to.
EXTERNAL_EXPORT_HOSTS = {"api.honeycomb.io", "api.eu1.honeycomb.io"}
MEMORY_BUDGET = 2 * 10**9  # bytes: "under 2 GB" read strictly, so also under 2 GiB
GO_SERVICES = (JAEGER, COLLECTOR)


# --- Compose: reading it the way `docker compose` does --------------------------------

# $$ | ${NAME} | ${NAME<op>arg} with op one of :- - :? ? :+ + | $NAME
_COMPOSE_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def compose_variables(text: str) -> list[tuple[str, str | None]]:
    """(name, operator) for each variable reference in a compose file's text."""
    found = []
    for match in _COMPOSE_VAR.finditer(text):
        if match["escaped"]:
            continue
        found.append((match["braced"] or match["bare"], match["op"]))
    return found


def interpolate(value, env: dict[str, str]):
    """Compose's interpolation over a loaded file: defaults apply, `?` errors raise."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        present = name in env
        usable = present and (env[name] != "" or not (op or "").startswith(":"))
        if op in (":-", "-"):
            return env[name] if usable else arg
        if op in (":?", "?"):
            if not usable:
                raise ValueError(f"required variable {name} is missing: {arg}")
            return env[name]
        if op in (":+", "+"):
            return arg if usable else ""
        return env.get(name, "")

    return _COMPOSE_VAR.sub(substitute, value)


def load_compose(path: Path = COMPOSE_FILE, env: dict[str, str] | None = None) -> dict:
    return interpolate(yaml.safe_load(path.read_text()), env or {})


def required_variables(*paths: Path) -> dict[str, str]:
    """A stand-in value for every `${VAR:?...}`, so a file loads as it would once set."""
    return {
        name: f"placeholder-{name.lower()}"
        for path in paths
        for name, op in compose_variables(path.read_text())
        if op in (":?", "?")
    }


def compose_spec_schema() -> dict:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendored.joinpath("compose-spec.json").read_text())


def schema_errors(document: dict) -> list[str]:
    schema = compose_spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


_BYTE_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def parse_bytes(value: str | int) -> int:
    """Compose's memory sizes: 160m, 1.5g, 512k, 1024 (binary units, like Docker)."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", value.strip().lower())
    if not match:
        raise ValueError(f"not a memory size: {value!r}")
    return int(float(match[1]) * _BYTE_UNITS[match[2]])


def parse_go_bytes(value: str) -> int:
    """GOMEMLIMIT's syntax: 300MiB, 1GiB, 123456 (bytes)."""
    match = re.fullmatch(r"(\d+)(B|KiB|MiB|GiB)?", value)
    if not match:
        raise ValueError(f"not a GOMEMLIMIT value: {value!r}")
    return int(match[1]) * {None: 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[match[2]]


def memory_limit(service: dict) -> int | None:
    limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
    declared = [parse_bytes(v) for v in (service.get("mem_limit"), limits.get("memory")) if v]
    if len(set(declared)) > 1:
        raise ValueError("mem_limit and deploy.resources.limits.memory disagree")
    return declared[0] if declared else None


def memory_problems(compose: dict, budget: int = MEMORY_BUDGET) -> list[str]:
    problems = []
    total = 0
    for name, service in compose["services"].items():
        limit = memory_limit(service)
        if limit is None:
            problems.append(f"{name} has no memory limit")
        else:
            total += limit
    if total >= budget:
        problems.append(f"memory limits sum to {total} bytes, over the {budget} budget")
    return problems


def published_ports(service: dict) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) for each short-syntax port."""
    published = []
    for entry in service.get("ports", []):
        parts = str(entry).split("/")[0].split(":")
        if len(parts) == 3:
            published.append((parts[0], int(parts[1]), int(parts[2])))
        elif len(parts) == 2:
            published.append(("0.0.0.0", int(parts[0]), int(parts[1])))
        else:
            raise ValueError(f"port {entry!r} is not published to a fixed host port")
    return published


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def url_problems(compose: dict) -> list[str]:
    """Every URL in a service's environment names a compose service on a port it serves,
    or (for links a human opens) localhost on a port that compose publishes."""
    listening = {name: set() for name in compose["services"]}
    for svc in topology.SERVICES:
        if svc.name in listening:
            listening[svc.name].add(svc.port)
    listening.get(POSTGRES, set()).add(5432)
    if COLLECTOR in listening:
        listening[COLLECTOR] |= set(receiver_ports(load_yaml(COLLECTOR_CONFIG)).values())
    on_host = {
        host_port
        for service in compose["services"].values()
        for _, host_port, _ in published_ports(service)
    }
    problems = []
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            parts = urlsplit(value)
            if not (parts.scheme and parts.hostname):
                continue
            where = f"{name}: {key}={value}"
            if parts.hostname == "localhost":
                if parts.port not in on_host:
                    problems.append(f"{where}: nothing is published on localhost:{parts.port}")
            elif parts.hostname not in listening:
                problems.append(f"{where}: no compose service {parts.hostname!r}")
            elif parts.port not in listening[parts.hostname]:
                problems.append(f"{where}: {parts.hostname} does not listen on {parts.port}")
    return problems


def topology_problems(compose: dict) -> list[str]:
    """Each topology service runs its module on its port, with its names, its version and
    the URL variables of exactly the services it calls; nothing depends on a service
    that compose does not define."""
    services = compose["services"]
    problems = []
    for svc in topology.SERVICES:
        service = services.get(svc.name)
        if service is None:
            problems.append(f"{svc.name} is missing from compose")
            continue
        command = ["uvicorn", svc.module, "--host", "0.0.0.0", "--port", str(svc.port)]
        if service.get("command") != command:
            problems.append(f"{svc.name}: command {service.get('command')} is not {command}")
        env = environment(service)
        expected = {
            "SAMPLE_APP_SERVICE": svc.name,
            "O11YKIT_SERVICE_NAME": svc.service_name,
            "O11YKIT_SERVICE_VERSION": svc.version,
        }
        for key, value in expected.items():
            if env.get(key) != value:
                problems.append(f"{svc.name}: {key}={env.get(key)!r}, topology says {value!r}")
        wanted = {
            topology.URL_VARIABLES[callee]: f"http://{callee}:{topology.BY_NAME[callee].port}"
            for callee in svc.calls
        }
        have = {
            key: value
            for key, value in env.items()
            if key.endswith("_URL") and key in topology.URL_VARIABLES.values()
        }
        if have != wanted:
            problems.append(f"{svc.name}: URL variables {have}, topology says {wanted}")
        if ("DATABASE_URL" in env) != svc.has_database:
            problems.append(
                f"{svc.name}: DATABASE_URL given {'DATABASE_URL' in env}, "
                f"has_database is {svc.has_database}"
            )
        probe = " ".join(service.get("healthcheck", {}).get("test", []))
        if f", {svc.port})" not in probe:
            problems.append(f"{svc.name}: health probe {probe!r} does not probe {svc.port}")
        for callee in svc.calls:
            condition = service.get("depends_on", {}).get(callee, {}).get("condition")
            if condition != "service_healthy":
                problems.append(f"{svc.name} does not wait for {callee} to be healthy")
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            if dependency not in services:
                problems.append(f"{name} depends on {dependency!r}, which compose does not define")
    return problems


# --- Collector and Jaeger configs --------------------------------------------------------

PIPELINE_PARTS = ("receivers", "processors", "exporters")
_CONFMAP_VAR = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def merge_configs(base: dict, overlay: dict) -> dict:
    """The Collector's merge of several --config files: maps merge, the rest replaces."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_configs(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def pipeline_problems(config: dict) -> list[str]:
    """Pipelines may name only components the config defines (connectors count as both
    receivers and exporters), and listed extensions must be defined."""
    problems = []
    connectors = set(config.get("connectors") or {})
    service = config.get("service") or {}
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        problems.append("no pipelines")
    for pipeline, parts in pipelines.items():
        if pipeline.split("/")[0] not in ("traces", "metrics", "logs", "profiles"):
            problems.append(f"{pipeline}: not a signal type")
        if not parts.get("receivers") or not parts.get("exporters"):
            problems.append(f"{pipeline}: needs receivers and exporters")
        for part in PIPELINE_PARTS:
            defined = set(config.get(part) or {})
            if part in ("receivers", "exporters"):
                defined |= connectors
            for component in parts.get(part) or []:
                if component not in defined:
                    problems.append(f"{pipeline}: {part[:-1]} {component!r} is not defined")
    for extension in service.get("extensions") or []:
        if extension not in (config.get("extensions") or {}):
            problems.append(f"extension {extension!r} is not defined")
    return problems


def expand_config_value(value: str, env: dict[str, str] | None = None) -> str:
    """${env:NAME:-default} as the Collector expands it (the default only when unset)."""
    env = env or {}
    return _CONFMAP_VAR.sub(lambda m: env.get(m[1], m[2] if m[2] is not None else ""), value)


def receiver_ports(config: dict) -> dict[str, int]:
    """{"grpc": 4317, "http": 4318} from an otlp receiver."""
    protocols = config["receivers"]["otlp"]["protocols"]
    return {
        protocol: int(settings["endpoint"].rsplit(":", 1)[1])
        for protocol, settings in protocols.items()
    }


def exporter_problems(config: dict, compose: dict) -> list[str]:
    """An exporter with an endpoint sends to a compose service on a port it receives OTLP
    on, or to one of the known external backends."""
    receives = {JAEGER: set(receiver_ports(load_yaml(JAEGER_CONFIG)).values())}
    problems = []
    for name, settings in (config.get("exporters") or {}).items():
        endpoint = (settings or {}).get("endpoint")
        if endpoint is None:
            continue
        resolved = expand_config_value(str(endpoint))
        parts = urlsplit(resolved if "://" in resolved else f"//{resolved}")
        if parts.hostname in EXTERNAL_EXPORT_HOSTS:
            if parts.port != 443:
                problems.append(f"{name}: {resolved} is not the TLS port 443")
            continue
        if parts.hostname not in compose["services"]:
            problems.append(f"{name}: {resolved} is not a compose service")
        elif parts.port not in receives.get(parts.hostname, set()):
            problems.append(f"{name}: {parts.hostname} receives no OTLP on {parts.port}")
    return problems


def config_variables(*paths: Path) -> list[tuple[str, bool]]:
    """(name, has a default) for each ${env:NAME} in Collector or Jaeger configs."""
    return [
        (match[1], match[2] is not None)
        for path in paths
        for match in _CONFMAP_VAR.finditer(path.read_text())
    ]


def variable_flags(compose_text: str) -> list[tuple[str, bool]]:
    """(name, has a default) for each variable of a compose file."""
    return [(name, op in (":-", "-")) for name, op in compose_variables(compose_text)]


def documented_variables(doc: str) -> set[str]:
    """The variables a Markdown page lists as rows of a table: | `NAME` | ..."""
    return set(re.findall(r"^\|\s*`([A-Za-z_][A-Za-z0-9_]*)`\s*\|", doc, re.MULTILINE))


def undocumented_variables(variables: list[tuple[str, bool]], doc: str) -> set[str]:
    listed = documented_variables(doc)
    return {name for name, has_default in variables if not has_default and name not in listed}


# --- Images and the Dockerfile -----------------------------------------------------------

_VERSION_TAG = re.compile(r"\d+\.\d+(\.\d+)?(-[A-Za-z0-9.-]+)?")


def image_pin_problem(image: str) -> str | None:
    """A pulled image names a version of at least major.minor, never `latest`."""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag, or the colon was a registry port
        return f"{image}: no tag"
    if tag == "latest":
        return f"{image}: latest"
    if not _VERSION_TAG.fullmatch(tag):
        return f"{image}: tag {tag!r} is not a version number (major.minor at least)"
    return None


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_problems(text: str) -> list[str]:
    instructions = dockerfile_instructions(text)
    problems = []
    bases = [arguments.split()[0] for keyword, arguments in instructions if keyword == "FROM"]
    if not bases:
        return ["no FROM"]
    for base in bases:
        if problem := image_pin_problem(base):
            problems.append(f"base image {problem}")
    installs = [
        arguments
        for keyword, arguments in instructions
        if keyword == "RUN" and "pip install" in arguments
    ]
    if not any(
        '".[workshop]"' in run or "'.[workshop]'" in run or " .[workshop]" in run
        for run in installs
    ):
        problems.append("does not pip install the project with its workshop extra")
    if not any("psycopg[binary]" in run for run in installs):
        problems.append("does not install psycopg[binary] for Postgres")
    users = [i for i, (keyword, _) in enumerate(instructions) if keyword == "USER"]
    if not users:
        problems.append("runs as root: no USER")
    else:
        user = instructions[users[-1]][1]
        if user.split(":")[0] in ("root", "0"):
            problems.append(f"USER {user} is root")
    secret = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)
    for keyword, arguments in instructions:
        if keyword in ("ENV", "ARG") and secret.search(arguments):
            problems.append(f"{keyword} {arguments!r} looks like a secret baked into the image")
    return problems


def bind_mounts(service: dict) -> dict[str, str]:
    """{container path: host path} for short-syntax bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts[target] = source
    return mounts


def config_paths(command: list[str]) -> list[str]:
    paths, arguments = [], iter(command)
    for argument in arguments:
        if argument == "--config":
            paths.append(next(arguments))
        elif argument.startswith("--config="):
            paths.append(argument.split("=", 1)[1])
    return paths


def dockerignore_admits(patterns: list[str], path: str) -> bool:
    """Docker's rule, near enough: the last pattern matching the path or one of its
    folders wins, and `!` admits again."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    admitted = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            admitted = negated
    return admitted
