"""`o11ykit app up --backend`: checked before anything starts, and it beats the shell's
O11YKIT_BACKEND; without it the shell's variable applies. No stack is started: a stand-in
records the configuration `up` would start one with."""

from __future__ import annotations

from typing import ClassVar

import pytest

from o11ykit import cli
from o11ykit.config import BACKENDS
from sample_app import stack as stack_module
from sample_app import topology
from sample_app.stack import Stack


class _RecordingStack:
    """Stands in for the Stack: keeps the configuration, and stops at start."""

    configs: ClassVar[list[stack_module.StackConfig]] = []

    def __init__(self, config: stack_module.StackConfig) -> None:
        self.configs.append(config)
        self.services: dict = {}

    def start(self, progress=print) -> None:
        raise RuntimeError("not started: a test")

    def stop(self) -> None:
        pass


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[stack_module.StackConfig]:
    configs: list[stack_module.StackConfig] = []
    monkeypatch.setattr(_RecordingStack, "configs", configs)
    monkeypatch.setattr(stack_module, "Stack", _RecordingStack)
    monkeypatch.delenv("O11YKIT_BACKEND", raising=False)
    return configs


def up(tmp_path, *argv: str) -> int:
    return cli.main(["app", "up", "--free-ports", "--data-dir", str(tmp_path / "d"), *argv])


def test_an_unknown_backend_is_refused_before_anything_starts(recorded, tmp_path, capsys):
    """`--backend foo` started the stack, and each service logged that it fell back."""
    with pytest.raises(SystemExit) as exited:
        up(tmp_path, "--backend", "foo")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --backend: 'foo' is not accepted; accepted values: " in err, err
    assert ", ".join(BACKENDS) in err
    assert recorded == [] and not (tmp_path / "d").exists()


def test_an_unknown_backend_from_the_shell_is_refused_naming_the_variable(
    recorded, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("O11YKIT_BACKEND", "foo")
    assert up(tmp_path) == 2
    err = capsys.readouterr().err
    assert "O11YKIT_BACKEND 'foo' is not accepted; accepted values: " in err, err
    assert ", ".join(BACKENDS) in err and "--backend" in err
    assert recorded == []


def _services_backend(config: stack_module.StackConfig) -> str:
    """O11YKIT_BACKEND as a service of a stack so configured gets it."""
    return Stack(config).environment(topology.BY_NAME["payments"])["O11YKIT_BACKEND"]


def test_the_backend_flag_wins_over_the_shells_variable(recorded, tmp_path, monkeypatch):
    """The shell's O11YKIT_BACKEND reached the services over an explicit --backend."""
    monkeypatch.setenv("O11YKIT_BACKEND", "jaeger")
    assert up(tmp_path, "--backend", "otlp") == 1  # the stand-in's start
    (config,) = recorded
    assert config.backend == "otlp"
    assert _services_backend(config) == "otlp"


def test_without_the_flag_the_shells_variable_applies(recorded, tmp_path, monkeypatch):
    monkeypatch.setenv("O11YKIT_BACKEND", "Jaeger")  # as o11ykit reads it: any case
    assert up(tmp_path) == 1
    monkeypatch.delenv("O11YKIT_BACKEND")
    assert up(tmp_path) == 1
    assert [config.backend for config in recorded] == ["jaeger", "local"]
    assert _services_backend(recorded[0]) == "jaeger"


def test_a_stack_configured_from_python_keeps_its_backend(tmp_path, monkeypatch):
    """StackConfig(backend=...) lost to the shell's O11YKIT_BACKEND, passed through."""
    monkeypatch.setenv("O11YKIT_BACKEND", "jaeger")
    config = stack_module.StackConfig(data_dir=tmp_path, backend="otlp", free_ports=True)
    assert _services_backend(config) == "otlp"
