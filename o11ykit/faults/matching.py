"""The pure parts of deciding whether a fault touches a request: routes and the percent draw."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable

_GLOB_CHARS = frozenset("*?[")


def _glob_pattern(glob: str) -> str:
    # `*` stays within one path segment so `/api/products/*` does not swallow deeper routes
    # by accident; `**` is there for whoever wants them.
    parts = re.split(r"(\*\*|\*|\?)", glob)
    translated = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return "".join(translated.get(part, re.escape(part)) for part in parts)


def route_matcher(routes: Iterable[str]) -> Callable[[str], bool]:
    """Matches a request path against prefixes (segment-wise: `/api/orders` is not
    `/api/orders-archive`) and globs."""
    routes = tuple(routes)
    prefixes = tuple(r.rstrip("/") or "/" for r in routes if not _GLOB_CHARS & set(r))
    globs = [_glob_pattern(r) for r in routes if _GLOB_CHARS & set(r)]
    glob = re.compile("|".join(f"(?:{g})" for g in globs)) if globs else None
    under = tuple(p if p == "/" else p + "/" for p in prefixes)

    def matches(path: str) -> bool:
        if path in prefixes or path.startswith(under):
            return True
        return glob is not None and glob.fullmatch(path) is not None

    return matches


def draw(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by (seed, key): every process, every language can agree on
    it, so one trace is in or out of a fault's share in every service it crosses."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
