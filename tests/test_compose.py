"""docker-compose.yml, its Honeycomb override, the Collector and Jaeger configs and the
Dockerfile, checked statically: no machine here has a Docker engine, so the stack is
never started in CI. sample_app.topology is the source of truth for names, ports,
versions and who calls whom. Each checker in tests/support/compose_checks.py is also fed
a broken copy here, so a checker that cannot fail would be caught."""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from packaging.specifiers import SpecifierSet

from sample_app import topology
from tests.support.compose_checks import (
    COLLECTOR,
    COLLECTOR_CONFIG,
    COLLECTOR_HONEYCOMB,
    COMPOSE_DOC,
    COMPOSE_FILE,
    DOCKERFILE,
    DOCKERIGNORE,
    GO_SERVICES,
    HONEYCOMB_FILE,
    JAEGER,
    JAEGER_CONFIG,
    POSTGRES,
    ROOT,
    SEED,
    bind_mounts,
    config_paths,
    config_variables,
    dockerfile_instructions,
    dockerfile_problems,
    dockerignore_admits,
    documented_variables,
    environment,
    expand_config_value,
    exporter_problems,
    image_pin_problem,
    interpolate,
    load_compose,
    load_yaml,
    memory_limit,
    memory_problems,
    merge_configs,
    parse_bytes,
    parse_go_bytes,
    pipeline_problems,
    published_ports,
    receiver_ports,
    required_variables,
    schema_errors,
    topology_problems,
    undocumented_variables,
    url_problems,
    variable_flags,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest itself depends on tomli before 3.11
    import tomli as tomllib


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def collector_configs() -> dict[str, dict]:
    base = load_yaml(COLLECTOR_CONFIG)
    return {
        "otelcol.yaml": base,
        "otelcol.yaml + otelcol.honeycomb.yaml": merge_configs(
            base, load_yaml(COLLECTOR_HONEYCOMB)
        ),
    }


@pytest.mark.parametrize("path", [COMPOSE_FILE, HONEYCOMB_FILE], ids=lambda p: p.name)
def test_compose_files_follow_the_compose_specification(path):
    document = load_compose(path, required_variables(path))
    assert schema_errors(document) == []


def test_the_schema_rejects_what_compose_would_reject(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["seed"]["depends_on"]["postgres"]["condition"] = "service_ready"
    broken["services"]["gateway"]["restart_policy"] = "always"
    errors = schema_errors(broken)
    assert any("service_ready" in error for error in errors)
    assert any("restart_policy" in error for error in errors)


def test_interpolation_follows_compose():
    assert interpolate("${A:-x}|${A-y}|$$A|${B}", {"A": ""}) == "x||$A|"
    assert interpolate("${A:+set}", {"A": "1"}) == "set"
    with pytest.raises(ValueError, match="HONEYCOMB"):
        interpolate("${HONEYCOMB_API_KEY:?set it}", {})
    # The Honeycomb override cannot start without its key.
    with pytest.raises(ValueError, match="HONEYCOMB_API_KEY"):
        load_compose(HONEYCOMB_FILE)


def test_every_topology_service_runs_with_its_port_version_and_callees(compose):
    assert topology_problems(compose) == []


def test_the_topology_check_catches_drift(compose):
    drifted = copy.deepcopy(compose)
    del drifted["services"]["payments"]
    drifted["services"]["orders"]["environment"]["O11YKIT_SERVICE_VERSION"] = "2.2.9"
    del drifted["services"]["gateway"]["environment"]["CATALOG_CANARY_URL"]
    drifted["services"]["catalog"]["environment"]["PAYMENTS_URL"] = "http://payments:8083"
    drifted["services"]["catalog-canary"]["command"][-1] = "8081"
    drifted["services"]["gateway"]["depends_on"]["search"] = {"condition": "service_started"}
    problems = "\n".join(topology_problems(drifted))
    assert "payments is missing" in problems
    assert "2.2.9" in problems
    assert "gateway: URL variables" in problems
    assert "catalog: URL variables" in problems
    assert "catalog-canary: command" in problems
    assert "gateway depends on 'search'" in problems


def test_no_url_points_at_a_service_that_does_not_exist(compose):
    assert url_problems(compose) == []
    broken = copy.deepcopy(compose)
    broken["services"]["orders"]["environment"]["PAYMENTS_URL"] = "http://billing:8083"
    broken["services"]["gateway"]["environment"]["ORDERS_URL"] = "http://orders:9999"
    broken["services"]["catalog"]["environment"]["O11YKIT_QUERY_URL"] = "http://localhost:9"
    problems = "\n".join(url_problems(broken))
    assert "no compose service 'billing'" in problems
    assert "orders does not listen on 9999" in problems
    assert "nothing is published on localhost:9" in problems


def test_services_send_to_the_collector_with_the_workshop_settings(compose):
    http_port = receiver_ports(load_yaml(COLLECTOR_CONFIG))["http"]
    for svc in topology.SERVICES:
        env = environment(compose["services"][svc.name])
        assert env["O11YKIT_BACKEND"] == "otlp"
        assert env["O11YKIT_ENDPOINT"] == f"http://{COLLECTOR}:{http_port}/v1/traces"
        assert env["O11YKIT_ENVIRONMENT"] == "workshop"
        assert env["O11YKIT_FAULTS"] == "true"
        assert env["O11YKIT_FAULTS_TOKEN"] == "workshop-token"  # the default, unset here
        assert env["O11YKIT_QUERY_URL"] == "http://localhost:16686"
        trusted = env.get("O11YKIT_BAGGAGE_TRUST_INBOUND") == "true"
        assert trusted == (svc.name != topology.EDGE), svc.name
    overridden = load_compose(env={"O11YKIT_FAULTS_TOKEN": "facilitator-only"})
    assert environment(overridden["services"]["gateway"])["O11YKIT_FAULTS_TOKEN"] == (
        "facilitator-only"
    )


def test_the_seed_fills_postgres_before_the_database_services_start(compose):
    services = compose["services"]
    postgres = services[POSTGRES]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert environment(postgres) == {
        "POSTGRES_USER": "o11ykit",
        "POSTGRES_PASSWORD": "o11ykit",
        "POSTGRES_DB": "o11ykit",
    }
    seed = services[SEED]
    assert seed["command"] == ["python", "-m", "sample_app.seed"]
    assert seed["depends_on"][POSTGRES]["condition"] == "service_healthy"
    assert seed["restart"] == "no"  # a one-shot job
    database_url = "postgresql+psycopg://o11ykit:o11ykit@postgres:5432/o11ykit"
    assert environment(seed)["DATABASE_URL"] == database_url
    for svc in topology.SERVICES:
        depends_on = services[svc.name].get("depends_on", {})
        if svc.has_database:
            assert environment(services[svc.name])["DATABASE_URL"] == database_url
            assert depends_on[SEED]["condition"] == "service_completed_successfully"
            assert depends_on[POSTGRES]["condition"] == "service_healthy"
        else:
            assert SEED not in depends_on


def test_only_the_gateway_and_the_telemetry_ports_are_published(compose):
    published = {
        name: {(host, container) for _, host, container in published_ports(service)}
        for name, service in compose["services"].items()
        if service.get("ports")
    }
    edge = topology.BY_NAME[topology.EDGE].port
    collector = receiver_ports(load_yaml(COLLECTOR_CONFIG))
    assert published == {
        topology.EDGE: {(edge, edge)},
        JAEGER: {(16686, 16686)},
        COLLECTOR: {(collector["grpc"], collector["grpc"]), (collector["http"], collector["http"])},
    }
    # Loopback unless the facilitator opts in: the fault switch is behind a known token.
    for service in compose["services"].values():
        assert {address for address, _, _ in published_ports(service)} <= {"127.0.0.1"}
    shared = load_compose(env={"WORKSHOP_BIND_ADDRESS": "0.0.0.0"})
    assert published_ports(shared["services"][topology.EDGE])[0][0] == "0.0.0.0"


def test_restart_policies(compose):
    for name, service in compose["services"].items():
        assert service.get("restart") == ("no" if name == SEED else "on-failure"), name


@pytest.mark.parametrize("which", ["otelcol.yaml", "otelcol.yaml + otelcol.honeycomb.yaml"])
def test_collector_pipelines_name_only_defined_components(collector_configs, which):
    assert pipeline_problems(collector_configs[which]) == []


def test_jaeger_pipelines_and_storage_names_resolve():
    config = load_yaml(JAEGER_CONFIG)
    assert pipeline_problems(config) == []
    backends = config["extensions"]["jaeger_storage"]["backends"]
    store = config["extensions"]["jaeger_query"]["storage"]["traces"]
    assert store in backends
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] == store
    assert backends[store]["memory"]["max_traces"] > 0  # bounded: it lives in the heap
    assert config["extensions"]["jaeger_query"]["http"]["endpoint"].endswith(":16686")


def test_the_honeycomb_overlay_adds_a_pipeline_and_keeps_jaeger(collector_configs):
    overlay = load_yaml(COLLECTOR_HONEYCOMB)
    merged = collector_configs["otelcol.yaml + otelcol.honeycomb.yaml"]
    base_pipelines = collector_configs["otelcol.yaml"]["service"]["pipelines"]
    assert merged["service"]["pipelines"]["traces"] == base_pipelines["traces"]
    own = overlay["service"]["pipelines"]
    assert set(own) & set(base_pipelines) == set()  # adds; replaces nothing
    # The overlay defines the exporters it names; receivers and processors are the base's.
    for parts in own.values():
        assert set(parts["exporters"]) <= set(overlay["exporters"])
    exporter = overlay["exporters"]["otlp_grpc/honeycomb"]
    assert exporter["headers"] == {"x-honeycomb-team": "${env:HONEYCOMB_API_KEY}"}


def test_the_pipeline_check_rejects_undefined_components(collector_configs):
    broken = copy.deepcopy(collector_configs["otelcol.yaml"])
    broken["service"]["pipelines"]["traces"]["exporters"].append("otlp_grpc/zipkin")
    broken["service"]["pipelines"]["logs"]["processors"] = ["batch", "attributes/scrub"]
    broken["service"]["extensions"] = ["health_check"]
    broken["service"]["pipelines"]["spans"] = {"receivers": ["otlp"], "exporters": ["nop"]}
    problems = "\n".join(pipeline_problems(broken))
    assert "exporter 'otlp_grpc/zipkin' is not defined" in problems
    assert "processor 'attributes/scrub' is not defined" in problems
    assert "extension 'health_check' is not defined" in problems
    assert "spans: not a signal type" in problems
    # An overlay alone names the base's processors: valid only once merged.
    overlay = load_yaml(COLLECTOR_HONEYCOMB)
    assert any("memory_limiter" in problem for problem in pipeline_problems(overlay))


def test_merging_replaces_lists_like_the_collector():
    base = {"service": {"pipelines": {"traces": {"exporters": ["a"]}}}}
    overlay = {"service": {"pipelines": {"traces": {"exporters": ["b"]}}}}
    assert merge_configs(base, overlay)["service"]["pipelines"]["traces"]["exporters"] == ["b"]
    assert base["service"]["pipelines"]["traces"]["exporters"] == ["a"]


def test_every_collector_pipeline_starts_with_the_memory_limiter(collector_configs):
    for config in collector_configs.values():
        for name, parts in config["service"]["pipelines"].items():
            assert parts["processors"][0] == "memory_limiter", name
            if name.startswith("traces"):
                assert parts["processors"][-1] == "batch", name
    limiter = collector_configs["otelcol.yaml"]["processors"]["memory_limiter"]
    assert 0 < limiter["spike_limit_percentage"] < limiter["limit_percentage"] < 100


def test_collector_exporters_point_at_compose_services(collector_configs, compose):
    for config in collector_configs.values():
        assert exporter_problems(config, compose) == []
    broken = copy.deepcopy(collector_configs["otelcol.yaml"])
    broken["exporters"]["otlp_grpc/jaeger"]["endpoint"] = "jaeger-collector:4317"
    broken["exporters"]["otlp_grpc/tempo"] = {"endpoint": "jaeger:14250"}
    broken["exporters"]["otlp_grpc/hny"] = {"endpoint": "api.honeycomb.io:80"}
    problems = "\n".join(exporter_problems(broken, compose))
    assert "jaeger-collector:4317 is not a compose service" in problems
    assert "jaeger receives no OTLP on 14250" in problems
    assert "api.honeycomb.io:80 is not the TLS port 443" in problems


def test_the_honeycomb_endpoint_defaults_agree():
    exporter = load_yaml(COLLECTOR_HONEYCOMB)["exporters"]["otlp_grpc/honeycomb"]
    in_config = expand_config_value(exporter["endpoint"])
    passed = load_compose(HONEYCOMB_FILE, {"HONEYCOMB_API_KEY": "k"})
    in_compose = environment(passed["services"][COLLECTOR])["HONEYCOMB_OTLP_ENDPOINT"]
    assert in_config == in_compose == "api.honeycomb.io:443"
    eu = expand_config_value(exporter["endpoint"], {"HONEYCOMB_OTLP_ENDPOINT": "x:1"})
    assert eu == "x:1"


def test_each_config_a_command_reads_is_mounted_from_deploy(compose):
    override = load_compose(HONEYCOMB_FILE, {"HONEYCOMB_API_KEY": "k"})["services"][COLLECTOR]
    merged_collector = {
        **compose["services"][COLLECTOR],
        "command": override["command"],
        "volumes": compose["services"][COLLECTOR]["volumes"] + override["volumes"],
    }
    expected = {
        JAEGER: (compose["services"][JAEGER], [JAEGER_CONFIG]),
        COLLECTOR: (compose["services"][COLLECTOR], [COLLECTOR_CONFIG]),
        "honeycomb override": (merged_collector, [COLLECTOR_CONFIG, COLLECTOR_HONEYCOMB]),
    }
    for label, (service, files) in expected.items():
        mounts = bind_mounts(service)
        read = [mounts.get(path) for path in config_paths(service["command"])]
        assert [(ROOT / source).resolve() for source in read] == files, label
        assert all(volume.endswith(":ro") for volume in service["volumes"]), label


def test_pulled_images_are_pinned_and_built_ones_share_one_build(compose):
    built = {}
    for name, service in compose["services"].items():
        if "build" in service:
            built[name] = (service["image"], json.dumps(service["build"], sort_keys=True))
        else:
            assert image_pin_problem(service["image"]) is None, name
    images = {name: service.get("image") for name, service in compose["services"].items()}
    assert images[JAEGER].startswith("jaegertracing/jaeger:2.")
    assert images[COLLECTOR].startswith("otel/opentelemetry-collector-contrib:0.")
    assert images[POSTGRES].startswith("postgres:17.")
    # One image for the sample services and the seed, from the repository's Dockerfile.
    assert set(built) == {svc.name for svc in topology.SERVICES} | {SEED}
    assert len(set(built.values())) == 1
    assert json.loads(next(iter(built.values()))[1]) == {"context": ".", "dockerfile": "Dockerfile"}


@pytest.mark.parametrize(
    "image",
    [
        "postgres",
        "postgres:latest",
        "postgres:17",
        "jaegertracing/jaeger:2",
        "localhost:5000/jaeger",
        "otel/opentelemetry-collector-contrib:nightly",
    ],
)
def test_the_pin_check_rejects_floating_images(image):
    assert image_pin_problem(image) is not None


def test_memory_limits_fit_the_budget(compose):
    assert memory_problems(compose) == []
    limiter_free = copy.deepcopy(compose)
    del limiter_free["services"]["payments"]["mem_limit"]
    limiter_free["services"]["jaeger"]["mem_limit"] = "1g"
    problems = "\n".join(memory_problems(limiter_free))
    assert "payments has no memory limit" in problems
    assert "over the" in problems
    assert parse_bytes("160m") == 160 * 2**20
    assert parse_bytes("1.5g") == 3 * 2**29
    with pytest.raises(ValueError):
        parse_bytes("lots")


def test_go_processes_collect_garbage_before_their_limit(compose):
    for name in GO_SERVICES:
        service = compose["services"][name]
        gomemlimit = parse_go_bytes(environment(service)["GOMEMLIMIT"])
        assert 0.5 * memory_limit(service) < gomemlimit < 0.9 * memory_limit(service), name


def test_dockerfile_is_pinned_installs_the_project_and_drops_root():
    assert dockerfile_problems(DOCKERFILE.read_text()) == []
    base = next(a for k, a in dockerfile_instructions(DOCKERFILE.read_text()) if k == "FROM")
    python = re.match(r"python:(\d+\.\d+\.\d+)-slim", base)
    assert python, base
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert python[1] in SpecifierSet(project["requires-python"])
    exposed = {
        int(port)
        for keyword, arguments in dockerfile_instructions(DOCKERFILE.read_text())
        if keyword == "EXPOSE"
        for port in arguments.split()
    }
    assert exposed == {svc.port for svc in topology.SERVICES}


def test_the_dockerfile_check_catches_the_usual_mistakes():
    bad = """
        FROM python:3.11-slim AS build
        FROM python:latest
        ENV HONEYCOMB_API_KEY=abc123
        RUN pip install requests
        USER root
        """
    problems = "\n".join(dockerfile_problems(bad))
    assert "python:latest" in problems
    assert "'3.11-slim'" not in problems  # major.minor is a version number
    assert "workshop extra" in problems
    assert "psycopg" in problems
    assert "USER root is root" in problems
    assert "secret" in problems
    assert "runs as root: no USER" in dockerfile_problems("FROM python:3.11.15-slim\n")


def test_dockerignore_admits_the_packages_and_nothing_else():
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"  # an allowlist
    for needed in (
        "pyproject.toml",
        "README.md",
        "o11ykit/__init__.py",
        "sample_app/topology.py",
        "labs/x",
    ):
        assert dockerignore_admits(patterns, needed), needed
    for kept_out in (
        ".venv/bin/python",
        ".env",
        ".git/config",
        "tests/test_compose.py",
        "o11ykit.egg-info/PKG-INFO",
        ".o11ykit/store.db",
        "o11ykit/__pycache__/config.cpython-311.pyc",
    ):
        assert not dockerignore_admits(patterns, kept_out), kept_out
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert dockerignore_admits(patterns, project["readme"])


def test_every_variable_has_a_default_or_is_documented():
    doc = COMPOSE_DOC.read_text()
    variables = [
        flag for path in (COMPOSE_FILE, HONEYCOMB_FILE) for flag in variable_flags(path.read_text())
    ]
    variables += config_variables(COLLECTOR_CONFIG, COLLECTOR_HONEYCOMB, JAEGER_CONFIG)
    assert undocumented_variables(variables, doc) == set()
    # Those a user is expected to set are listed even where they have defaults.
    assert documented_variables(doc) >= {
        "HONEYCOMB_API_KEY",
        "HONEYCOMB_OTLP_ENDPOINT",
        "O11YKIT_FAULTS_TOKEN",
        "WORKSHOP_BIND_ADDRESS",
    }
    assert undocumented_variables(variable_flags("x: ${NEW_SECRET}\ny: ${OK:-1}"), doc) == {
        "NEW_SECRET"
    }


def test_the_doc_names_the_pinned_images_and_the_budget(compose):
    doc = COMPOSE_DOC.read_text()
    total = sum(memory_limit(service) for service in compose["services"].values())
    assert f"add up to {total // 2**20} MiB" in doc
    for name in (JAEGER, COLLECTOR, POSTGRES):
        assert compose["services"][name]["image"] in doc, name
    base = next(a for k, a in dockerfile_instructions(DOCKERFILE.read_text()) if k == "FROM")
    assert base in doc


def _has_compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return version.returncode == 0


@pytest.mark.skipif(not _has_compose_plugin(), reason="the docker compose plugin is not here")
def test_docker_compose_accepts_both_files():  # pragma: no cover - needs the plugin
    """Where a developer has Compose (it needs no engine for this), ask it too."""
    command = [
        "docker",
        "compose",
        "-f",
        str(COMPOSE_FILE),
        "-f",
        str(HONEYCOMB_FILE),
        "config",
        "--quiet",
    ]
    result = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "HONEYCOMB_API_KEY": "k"},
    )
    assert result.returncode == 0, result.stderr


def test_the_image_contains_every_module_compose_runs(compose):
    """The image runs what `pip install .` installed, not the source tree: each module a
    compose command names must exist and be in a package pyproject.toml installs."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = find["packages"]["find"]["include"]
    modules = {SEED: "sample_app.seed"}
    for svc in topology.SERVICES:
        command = compose["services"][svc.name]["command"]
        modules[svc.name] = command[1].split(":")[0]
    for name, module in modules.items():
        path = ROOT.joinpath(*module.split("."))
        assert path.with_suffix(".py").exists() or (path / "__init__.py").exists(), name
        package = module.rsplit(".", 1)[0]
        assert any(fnmatch.fnmatch(package, pattern) for pattern in include), (
            f"{name} runs {module}, but pyproject.toml installs only {include}"
        )
