"""Renders deploy/helm/citytel for given values, as ``helm template`` would, without Helm.

Only the subset of Go templates the chart uses: ``{{ expr }}`` and ``{{ expr | quote }}``
where ``expr`` is ``.Values.a.b``, ``.Release.Name``, ``.Chart.X``, ``$.`` (the root) or
a ``$variable``; ``{{- range $v := list }}`` and ``{{- range $k, $v := map }}`` (a map's
keys in sorted order, as Go ranges them) up to ``{{- end }}``; ``{{-`` and ``-}}`` trim the
whitespace beside them. Anything else is an error, so the chart cannot drift past it.

    python -m tests.deploy.helm_render > deploy/helm/citytel/rendered/default.yaml
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "citytel"
RENDERED = CHART / "rendered" / "default.yaml"
_ACTION = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.DOTALL)
_RANGE = re.compile(r"range\s+(\$\w+)(?:\s*,\s*(\$\w+))?\s*:=\s*(\S+)$")


def _go_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<no value>"
    return str(value)


def _lookup(expr: str, scope: dict[str, Any]) -> Any:
    if expr.startswith("$."):
        base, path = scope["$"], expr[2:]
    elif expr.startswith("$"):
        name, _, path = expr.partition(".")
        base = scope[name]
    elif expr.startswith("."):
        base, path = scope["$"], expr[1:]
    else:
        raise ValueError(f"unsupported template expression {expr!r}")
    for part in filter(None, path.split(".")):
        base = base[part]
    return base


def _evaluate(action: str, scope: dict[str, Any]) -> str:
    expr, *pipes = (p.strip() for p in action.split("|"))
    value = _go_string(_lookup(expr, scope))
    for pipe in pipes:
        if pipe != "quote":
            raise ValueError(f"unsupported template function {pipe!r}")
        value = json.dumps(value)
    return value


def _tokens(text: str) -> list[tuple[str, str]]:
    """("text", ...) and ("action", ...) in order, with the trim markers applied."""
    out: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(text):
        chunk = text[pos : m.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if m[1]:
            chunk = chunk.rstrip()
        out.append(("text", chunk))
        out.append(("action", m[2]))
        pos, trim_next = m.end(), bool(m[3])
    tail = text[pos:]
    out.append(("text", tail.lstrip() if trim_next else tail))
    return out


def _render(tokens: list[tuple[str, str]], i: int, scope: dict[str, Any], out: list[str]) -> int:
    """Render from ``tokens[i]`` to the matching ``end`` (or the end); the index after it."""
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "text":
            out.append(value)
        elif value == "end":
            return i + 1
        elif value.startswith("range"):
            i = _range(tokens, i, value, scope, out)
            continue
        else:
            out.append(_evaluate(value, scope))
        i += 1
    return i


def _range(
    tokens: list[tuple[str, str]], i: int, action: str, scope: dict[str, Any], out: list[str]
) -> int:
    m = _RANGE.match(action)
    if not m:
        raise ValueError(f"unsupported range {action!r}")
    first, second, source = m[1], m[2], _lookup(m[3], scope)
    items = sorted(source.items()) if isinstance(source, dict) else list(enumerate(source))
    after = _skip(tokens, i + 1)
    for key, item in items:
        inner = {**scope, **({first: key, second: item} if second else {first: item})}
        _render(tokens, i + 1, inner, out)
    return after


def _skip(tokens: list[tuple[str, str]], i: int) -> int:
    depth = 1
    while depth:
        kind, value = tokens[i]
        if kind == "action" and value.startswith("range"):
            depth += 1
        elif kind == "action" and value == "end":
            depth -= 1
        i += 1
    return i


def render_template(text: str, root: dict[str, Any]) -> str:
    out: list[str] = []
    _render(_tokens(text), 0, {"$": root}, out)
    return "".join(out)


def render(values: dict[str, Any] | None = None, *, release: str = "citytel") -> str:
    """Every template's manifests, as one multi-document YAML text."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    root = {
        "Values": values if values is not None else default_values(),
        "Release": {"Name": release, "Namespace": "default"},
        "Chart": {
            "Name": chart["name"],
            "Version": chart["version"],
            "AppVersion": chart["appVersion"],
        },
    }
    docs = []
    for template in sorted((CHART / "templates").glob("*.yaml")):
        text = render_template(template.read_text(), root)
        for doc in re.split(r"^---\s*$", text, flags=re.MULTILINE):
            body = "\n".join(
                line for line in doc.strip("\n").splitlines() if not line.startswith("#")
            )
            if body.strip():
                docs.append(f"---\n# Source: citytel/templates/{template.name}\n{body}\n")
    return "".join(docs)


def default_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())  # type: ignore[no-any-return]


def manifests(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


if __name__ == "__main__":
    sys.stdout.write(render())
