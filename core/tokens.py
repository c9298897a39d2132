"""Check token substitution: the Go-template subset Sensu users write (runtime.md §2.4 step 3).

Why a small interpreter and not a template engine: Sensu check configs use a
tiny part of Go's ``text/template`` -- a dotted path into the entity
(``{{ .name }}``, ``{{ .labels.disk_warning }}``, ``{{ .system.hostname }}``),
optionally piped into ``default`` (``{{ .labels.x | default "80" }}``) -- and a
wrong guess must fail loudly rather than run ``check-disk -w`` with an empty
argument. So anything outside the subset is an error, as is an undefined token
without a default (Go renders ``<no value>`` and Sensu then refuses the check).

Supported inside ``{{ }}`` (with optional ``{{-``/``-}}`` trim markers):

* ``.a.b.c`` -- a path; ``.`` alone is the whole data
* ``index .labels "key"`` -- for keys that are not identifiers
* ``... | default <literal>`` -- used when the value is missing or empty;
  literals are double-quoted strings (Go escapes), back-quoted raw strings,
  numbers, ``true``/``false``.

Values render as Go prints them: strings as is, integers without a decimal
point, ``true``/``false``, lists as ``[a b]``, maps as ``map[k:v]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["TokenError", "substitute", "substitute_all", "token_data"]

_TOKEN_RE: Final = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_LEXEME_RE: Final = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<raw>`[^`]*`)|(?P<pipe>\|)|(?P<path>\.[\w.\-]*)'
    r"|(?P<num>[+-]?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_]\w*))"
)
_MISSING: Final = object()


class TokenError(ValueError):
    """A token that cannot be substituted; the message quotes it."""


def _lex(expr: str, token: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = expr.strip()
    while pos < len(text):
        m = _LEXEME_RE.match(text, pos)
        if m is None or m.end() == pos:
            raise TokenError(f"invalid token {token}: cannot parse {text[pos:]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _literal(kind: str, value: str, token: str) -> Any:
    if kind == "str":
        try:
            return json.loads(value)
        except ValueError:
            raise TokenError(f"invalid token {token}: bad string {value}") from None
    if kind == "raw":
        return value[1:-1]
    if kind == "num":
        return float(value) if "." in value else int(value)
    if kind == "word" and value in ("true", "false"):
        return value == "true"
    raise TokenError(f"invalid token {token}: expected a literal, got {value!r}")


def _lookup(data: Any, path: str) -> Any:
    if path == ".":
        return data
    current = data
    for part in path[1:].split("."):
        if not part:
            return _MISSING
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def _empty(value: Any) -> bool:
    return value is _MISSING or value is None or value == "" or value == [] or value == {} or value is False or (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0)


def _evaluate(lexemes: list[tuple[str, str]], data: Any, token: str) -> Any:
    commands: list[list[tuple[str, str]]] = [[]]
    for kind, text in lexemes:
        if kind == "pipe":
            commands.append([])
        else:
            commands[-1].append((kind, text))
    if any(not c for c in commands):
        raise TokenError(f"invalid token {token}: empty command")
    first = commands[0]
    value: Any
    if first[0][0] == "path" and len(first) == 1:
        value = _lookup(data, first[0][1])
    elif first[0] == ("word", "index") and len(first) >= 3 and first[1][0] == "path":
        value = _lookup(data, first[1][1])
        for kind, key in first[2:]:
            k = _literal(kind, key, token)
            value = value[k] if isinstance(value, Mapping) and k in value else _MISSING
    elif len(first) == 1 and first[0][0] in ("str", "raw", "num"):
        value = _literal(first[0][0], first[0][1], token)
    else:
        raise TokenError(f"invalid token {token}: unsupported expression")
    for command in commands[1:]:
        if command[0] != ("word", "default") or len(command) != 2:
            raise TokenError(f"invalid token {token}: only '| default <value>' may follow a pipe")
        if _empty(value):
            value = _literal(command[1][0], command[1][1], token)
    if value is _MISSING:
        raise TokenError(f"unmatched token {token}: no value and no default")
    return value


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(_render(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_render(value[k])}" for k in sorted(value)) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def substitute(text: str, data: Mapping[str, Any]) -> str:
    """Replace every ``{{ ... }}`` in ``text``; raises :class:`TokenError`."""
    if "{{" not in text:
        return text

    def replace(m: re.Match[str]) -> str:
        token = m.group(0)
        return _render(_evaluate(_lex(m.group(2), token), data, token))

    if "{{" in _TOKEN_RE.sub("", text):
        raise TokenError(f"invalid token in {text!r}: unclosed '{{{{'")
    return _TOKEN_RE.sub(replace, text)


def substitute_all(value: Any, data: Mapping[str, Any]) -> Any:
    """:func:`substitute` applied to every string inside a JSON-like value (a check config)."""
    if isinstance(value, str):
        return substitute(value, data)
    if isinstance(value, list):
        return [substitute_all(v, data) for v in value]
    if isinstance(value, dict):
        return {k: substitute_all(v, data) for k, v in value.items()}
    return value


def token_data(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The data check tokens are substituted with: the entity's JSON (stored
    form) with ``metadata`` keys also at the top level (``{{ .name }}``,
    ``{{ .labels.x }}``). The agent uses its own entity; the scheduler uses
    the proxy entity of a proxy check."""
    meta = entity.get("metadata") or {}
    data = dict(entity)
    for key in ("name", "namespace", "labels", "annotations"):
        data[key] = meta.get(key, {} if key in ("labels", "annotations") else "")
    return data
