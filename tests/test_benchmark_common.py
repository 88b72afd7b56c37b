"""What every benchmark runner does before it times anything."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from benchmarks.common import SOURCE_PACKAGES, compile_sources


def test_sources_are_compiled_even_where_bytecode_is_not_written(tmp_path: Path) -> None:
    """With PYTHONDONTWRITEBYTECODE set, nothing else would cache the bytecode of sources
    run from the tree, and every timed import would compile them again."""
    modules = [tmp_path / package / "inner" / "module.py" for package in SOURCE_PACKAGES]
    for module in modules:
        module.parent.mkdir(parents=True)
        (module.parent.parent / "__init__.py").write_text("")
        module.write_text("VALUE = 42\n")
    code = (
        "import sys; from pathlib import Path; from benchmarks.common import compile_sources;"
        f" assert sys.dont_write_bytecode; print(compile_sources(Path({str(tmp_path)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "'all_compiled': True" in done.stdout
    assert "'pythondontwritebytecode': True" in done.stdout
    for module in modules:
        assert Path(importlib.util.cache_from_source(str(module))).is_file(), module


def test_a_source_that_does_not_compile_is_reported(tmp_path: Path) -> None:
    (tmp_path / "o11ykit").mkdir()
    (tmp_path / "o11ykit" / "broken.py").write_text("def (:\n")
    assert compile_sources(tmp_path)["all_compiled"] is False
