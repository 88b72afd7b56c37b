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


def could_match(scope_route: str, template: str) -> bool:
    """Whether `scope_route` (a prefix or a glob, as route_matcher takes it) matches some
    request path of the route `template` (`/products/{product_id}`; a parameter, or a
    segment holding one, stands for any segment, and `{rest:path}` for any number).

    Answers True when unsure (a `**` glob against a template with parameters): a check of a
    fault's scope against the service's routes must never refuse a scope that would fire."""
    if "{" not in template:  # the route is one path: match it as its requests are matched
        return route_matcher([scope_route])(template)
    if "**" in scope_route:
        return True
    glob = bool(_GLOB_CHARS & set(scope_route))
    wanted = _segments(scope_route if glob else scope_route.rstrip("/") or "/")
    if not wanted:  # "/": every path
        return True
    route = _segments(template)
    for i, want in enumerate(wanted):
        if i == len(route):
            return False  # the scope is deeper than any path of the route
        have = route[i]
        if have.endswith(":path}"):
            return True  # the rest of the path, however deep
        if "{" in have:
            continue  # a parameter: any segment
        if glob:
            if not re.fullmatch(_glob_pattern(want), have):
                return False
        elif want != have:
            return False
    # A prefix matches every path under it; a glob's `*` stays within one segment.
    return not glob or len(wanted) == len(route) or route[len(wanted)].endswith(":path}")


def _segments(path: str) -> list[str]:
    return [part for part in path.split("/")[1:] if part] if path != "/" else []


def draw(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by (seed, key): every process, every language can agree on
    it, so one trace is in or out of a fault's share in every service it crosses."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
