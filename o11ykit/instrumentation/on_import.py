"""Run a callback once a module has been imported: now if it already has, else right after
the service imports it.

init() instruments a library only when the service uses it: importing SQLAlchemy, httpx or
requests (with their OpenTelemetry instrumentations) for a service that never does cost
~0.3 s and ~30 MB at start (benchmarks/README.md). A finder at the front of sys.meta_path
wraps the watched module's loader for that one import, runs the callback after the module
has executed and before the importer gets it back, then puts the original loader back.

A callback that imports another watched module (OpenTelemetry's httpx instrumentation
imports httpx2) would see that module's callback run while its own import is half done:
callbacks fired inside a callback wait, on the same thread, until it returns.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

Callback = Callable[[ModuleType], None]
log = logging.getLogger("o11ykit")

_lock = threading.Lock()
_waiting: dict[str, list[Callback]] = {}
_running = threading.local()


def when_imported(name: str, callback: Callback) -> Callable[[], bool]:
    """Call `callback(module)` once the top-level module `name` is imported (now, if it
    is). Returns a function that cancels the call if it has not happened yet, and says
    whether it did cancel it."""
    with _lock:
        imported = name in sys.modules
        if not imported:
            _install_finder()
            _waiting.setdefault(name, []).append(callback)
    if imported:
        # Another thread may be importing it still: import_module waits until it is done.
        _fire(importlib.import_module(name), [callback])

    def cancel() -> bool:
        with _lock:
            callbacks = _waiting.get(name, [])
            if callback not in callbacks:
                return False
            callbacks.remove(callback)
            if not callbacks:
                del _waiting[name]
            return True

    return cancel


def _fire(module: ModuleType, callbacks: list[Callback]) -> None:
    queued = getattr(_running, "queue", None)
    if queued is not None:  # inside another callback: after it
        queued += [(module, callback) for callback in callbacks]
        return
    _running.queue = [(module, callback) for callback in callbacks]
    try:
        while _running.queue:
            module, callback = _running.queue.pop(0)
            try:
                callback(module)
            except Exception:  # the service's import must go on whatever o11ykit does
                log.warning(
                    "o11ykit: a hook on importing %s failed", module.__name__, exc_info=True
                )
    finally:
        _running.queue = None


# Plain classes, not importlib.abc's: importing that module (it imports importlib.resources)
# would cost every `import o11ykit` a few ms, and the import system needs only the methods.
class _Finder:
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in _waiting:
            return None
        # The spec the finders behind this one give; None from them all is theirs to report.
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # a namespace package, or a loader of the old protocol: not watched
        spec.loader = _CallbackLoader(spec.loader)
        return spec


class _CallbackLoader:
    """The original loader, and the callbacks waiting for its module once it has run."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps its own loader: importlib.resources and the like ask it for data.
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        with _lock:
            callbacks = _waiting.pop(module.__name__, [])
        if callbacks:
            _fire(module, callbacks)

    def __getattr__(self, name: str) -> Any:  # get_data, is_package, get_resource_reader ...
        return getattr(self.loader, name)


_finder = _Finder()


def _install_finder() -> None:
    """Put the finder first on sys.meta_path, once (call with _lock held)."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
