"""docs/fault-catalogue.md, generated from the catalogue so the docs cannot drift:
`python -m sample_app.faults.reference > docs/fault-catalogue.md` (a test compares)."""

from __future__ import annotations

from sample_app.faults.catalogue import FAULTS, KINDS_BY_NAME, Fault

HEADER = """# The fault catalogue

Generated from `sample_app/faults/catalogue.py` by `python -m sample_app.faults.reference`;
a test fails when this file and the catalogue differ. Each fault is real behaviour in a
service's code, switched by o11ykit's fault engine (docs/faults.md); its fix switch is the
corrected code path, taken while the cause is still there. `o11ykit fault inject ID`
injects one with its default scope (flags such as `--tenant` and `--percent` change it),
`o11ykit fault fix ID` flips its fix switch, `o11ykit fault clear ID` removes it.
A fault whose cause lies outside requests (planted data, a dropped index, a background
job) honours only the scope fields its **Switch** line names; injecting it with another
(`--route`, `--user`, `--percent`, ...) is refused with the field's name, not ignored.
The others honour every field; `--route` is a path of the service the fault is in (the
orders service's `/orders`, not the gateway's `/api/orders`).

| id | class | services | default scope | signal | fix switch |
| --- | --- | --- | --- | --- | --- |
"""


def _scope(fault: Fault) -> str:
    parts = [
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in fault.scope.items()
    ]
    return "; ".join(parts) or "everyone"


def _signal(fault: Fault) -> str:
    return "<br>".join(
        f"{s.description} (`{s.measure}` of {s.service} `{s.operation}` ≥ {s.threshold:g})"
        for s in fault.signals
    )


def _params(fault: Fault) -> str:
    kind = KINDS_BY_NAME.get(fault.kind)
    if kind is None:
        return f"generic kind `{fault.kind}`: " + ", ".join(
            f"{k}={v}" for k, v in fault.params.items()
        )
    shown = [f"`{name}` ({p.help}, default {p.default})" for name, p in kind.params.items()]
    text = f"kind `{kind.name}` ({kind.help})" + (": " + "; ".join(shown) if shown else "")
    if kind.scope_fields is not None:
        honoured = ", ".join(f"`{name}`" for name in kind.scope_fields)
        text += f"; scope: {honoured} only" if honoured else "; scope: none (the whole service)"
    return text


def render() -> str:
    rows = [
        f"| `{f.id}` | {f.fault_class} | {', '.join(f.services)} | {_scope(f)} "
        f"| {_signal(f)} | {f.fix} |"
        for f in FAULTS
    ]
    sections = []
    for f in FAULTS:
        sections.append(
            f"## {f.id}: {f.title}\n\n"
            f"- **Story:** {f.story}\n"
            f"- **Mechanism:** {f.mechanism}\n"
            f"- **Switch:** {_params(f)}\n"
            f"- **Focus:** tenant {f.focus.tenant or 'any'}, user {f.focus.user or 'any'}, "
            f"personas {', '.join(f.focus.personas) or 'all'}\n"
            f"- **Fix switch:** {f.fix} (drill mitigation `{f.mitigation}`)\n"
        )
    return HEADER + "\n".join(rows) + "\n\n" + "\n".join(sections)


if __name__ == "__main__":
    print(render(), end="")
