"""What every benchmark runner records about itself: versions, the o11ykit sources, the command."""

from __future__ import annotations

import compileall
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata as md
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def o11ykit_snapshot() -> dict[str, Any]:
    """Git HEAD and a hash of the o11ykit sources: they may change while a run is going."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "o11ykit").rglob("*.py")):
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "git_head": git("rev-parse", "--short", "HEAD") or None,
        "o11ykit_uncommitted_changes": bool(git("status", "--porcelain", "--", "o11ykit")),
        "sources_sha256": digest.hexdigest()[:16],
    }


def exact_command(module: str) -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(REPO_ROOT)
    return shlex.join([str(python), "-m", module, *sys.argv[1:]])


# The repository's packages that benchmarked processes import from the source tree.
SOURCE_PACKAGES = ("o11ykit", "sample_app", "labs", "benchmarks")


def compile_sources(root: Path = REPO_ROOT) -> dict[str, Any]:
    """Compile the repository's own packages before anything is timed, as installing a
    package compiles it; returns what was done, for the report.

    Run from the source tree (an editable install), they are compiled on first import,
    and with PYTHONDONTWRITEBYTECODE set, as it may be on CI machines and in containers,
    on every import: each timed import and start then counted compiling o11ykit
    (`import o11ykit` 82 ms against 55 with its bytecode cached, 2026-12-07). Compiled
    here, every process reads the same bytecode whatever the setting (it only stops
    writing), and the first of a runner's rounds costs what the others do.
    """
    started = time.monotonic()
    ok = all(
        compileall.compile_dir(root / package, quiet=1, workers=1)
        for package in SOURCE_PACKAGES
        if (root / package).is_dir()
    )
    return {
        "compiled": list(SOURCE_PACKAGES),
        "all_compiled": bool(ok),
        "seconds": round(time.monotonic() - started, 2),
        "pythondontwritebytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
    }


def raise_on_sigterm() -> None:
    # A SIGTERM to a runner must still run the finally blocks that stop its children.
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def machine(dists: Iterable[str]) -> dict[str, Any]:
    """The machine and the versions a figure was measured with."""
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "versions": {d: version(d) for d in dists},
    }


def phase(name: str, action: Callable[[], Any]) -> Any:
    """Run one step of a benchmark, saying what it is and how long it took."""
    print(f"{name} ...", flush=True)
    started = time.monotonic()
    result = action()
    print(f"  done in {time.monotonic() - started:.1f} s", flush=True)
    return result


def target_mark(ok: bool) -> str:
    return "ok" if ok else "MISSES TARGET"


def run_and_record(
    module: str,
    args: Namespace,
    measure: Callable[[Namespace, Path], dict[str, Any]],
    *,
    described: Mapping[str, Any],
    after: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What every runner's main() does around its measurements: a work directory (kept
    with --keep), the load and the o11ykit sources before and after, and the report
    written to --results. `described` goes first in the report (environment, targets)."""
    raise_on_sigterm()
    bytecode = compile_sources()
    parent = args.dir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    started, load_before, sources_before = time.monotonic(), os.getloadavg(), o11ykit_snapshot()
    name = module.split(".")[1]
    work = Path(tempfile.mkdtemp(prefix=f"o11ykit-{name}-bench-", dir=parent))
    try:
        results = measure(args, work)
    except Exception:
        # The error names logs in the work dir (a process that did not start, a round that
        # stored nothing): a failed run keeps it, or the pointer would lead nowhere.
        print(f"kept, with the failed run's logs: {work}", file=sys.stderr, flush=True)
        raise
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): nothing to look into
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        raise
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "command": exact_command(module),
        **described,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "bytecode": bytecode,
        **results,
        **(after() if after else {}),
        "wall_seconds": round(time.monotonic() - started, 1),
        "loadavg_1_5_15": {"start": load_before, "end": os.getloadavg()},
        "o11ykit_sources": {"start": sources_before, "end": o11ykit_snapshot()},
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    return report
