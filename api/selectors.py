"""``labelSelector`` and ``fieldSelector`` (spec §1.9): parse once, match many objects.

Grammar::

    selector  := ""  |  operation ( "&&" operation )*
    operation := key op value
    op        := "==" | "!=" | "in" | "notin" | "matches"
    key       := word of letters, digits, "_", "." and "/"   |  quoted string
    value     := bare word  |  'single' or "double" quoted string  |  true | false
                 |  "[" value ( "," value )* "]"                      (in, notin)

Semantics follow Go's ``backend/selector``: ``==``/``in`` need the key present with a
value in the set; ``!=``/``notin`` need the key absent or its value outside the set;
``matches`` is a substring test.  ``X in field`` (one value that is itself a known key)
tests whether ``X`` is one of the field's comma-joined values, so
``linux in check.subscriptions`` works.

A parse error raises :class:`SelectorError`, which the API answers with a 400 whose
message names the position and the offending token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "Operation",
    "Operator",
    "Selector",
    "SelectorError",
    "compile_selector",
    "join_selectors",
    "parse_selector",
]

Operator = Literal["==", "!=", "in", "notin", "matches"]
Matcher = Callable[[Mapping[str, str], Mapping[str, str]], bool]

_WORD_OPERATORS: Final[dict[str, Operator]] = {"in": "in", "notin": "notin", "matches": "matches"}
_DELIMITERS: Final = frozenset("[],'\"=!&")
_KEY_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./")


class SelectorError(ValueError):
    """A selector that does not parse.  ``position`` is a 0-based character offset."""

    message: str
    position: int
    token: str

    def __init__(self, message: str, *, position: int, token: str) -> None:
        self.message = message
        self.position = position
        self.token = token
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["word", "string", "op", "and", "lbracket", "rbracket", "comma", "end"]
    text: str
    position: int

    def describe(self) -> str:
        return "end of input" if self.kind == "end" else repr(self.text)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == "[":
            tokens.append(_Token("lbracket", c, i))
            i += 1
        elif c == "]":
            tokens.append(_Token("rbracket", c, i))
            i += 1
        elif c == ",":
            tokens.append(_Token("comma", c, i))
            i += 1
        elif c in "=!":
            if text[i + 1:i + 2] != "=":
                raise SelectorError(
                    f"invalid selector: expected '{c}=' at position {i}, got {text[i:i + 2]!r}",
                    position=i, token=text[i:i + 2],
                )
            tokens.append(_Token("op", c + "=", i))
            i += 2
        elif c == "&":
            if text[i + 1:i + 2] != "&":
                raise SelectorError(
                    f"invalid selector: expected '&&' at position {i}, got {text[i:i + 2]!r}",
                    position=i, token=text[i:i + 2],
                )
            tokens.append(_Token("and", "&&", i))
            i += 2
        elif c in "'\"":
            end = text.find(c, i + 1)
            if end < 0:
                raise SelectorError(
                    f"invalid selector: unterminated string starting at position {i}", position=i, token=text[i:]
                )
            tokens.append(_Token("string", text[i + 1:end], i))
            i = end + 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _DELIMITERS:
                i += 1
            word = text[start:i]
            operator = _WORD_OPERATORS.get(word.lower())
            tokens.append(_Token("op", operator, start) if operator else _Token("word", word, start))
    tokens.append(_Token("end", "", n))
    return tokens


@dataclass(frozen=True, slots=True)
class Operation:
    """``key operator values``; ``values`` has one element except for ``in``/``notin`` lists."""

    key: str
    operator: Operator
    values: tuple[str, ...]

    def matches(self, values: Mapping[str, str]) -> bool:
        op = self.operator
        if op in ("in", "notin") and len(self.values) == 1 and self.values[0] in values:
            # "linux in check.subscriptions": the right side names a list-valued field.
            members = _split_list(values[self.values[0]])
            found = self.key in members
            return found if op == "in" else not found
        if op in ("==", "in"):
            return self.key in values and values[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in values or values[self.key] not in self.values
        # matches
        return self.key in values and any(v in values[self.key] for v in self.values)


def _split_list(value: str) -> list[str]:
    """Go's ``split``: strip brackets, split on commas, trim spaces."""
    return [part.strip() for part in value.strip("[]").split(",")]


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector: the conjunction of its operations (empty matches everything)."""

    operations: tuple[Operation, ...]

    def matches(self, values: Mapping[str, str]) -> bool:
        return all(op.matches(values) for op in self.operations)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def next(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    @staticmethod
    def fail(token: _Token, expected: str) -> SelectorError:
        return SelectorError(
            f"invalid selector: unexpected {token.describe()} at position {token.position}, expected {expected}",
            position=token.position,
            token=token.text,
        )

    def parse(self) -> Selector:
        operations: list[Operation] = []
        if self.peek().kind == "end":
            return Selector(())
        while True:
            operations.append(self.operation())
            token = self.next()
            if token.kind == "end":
                return Selector(tuple(operations))
            if token.kind != "and":
                raise self.fail(token, "'&&' or end of input")

    def operation(self) -> Operation:
        key_token = self.next()
        if key_token.kind == "string":
            key = key_token.text
        elif key_token.kind == "word":
            key = key_token.text
            bad = next((ch for ch in key if ch not in _KEY_CHARS), None)
            if bad is not None or key.endswith("."):
                raise SelectorError(
                    f"invalid selector: invalid key {key!r} at position {key_token.position}: keys use letters, "
                    "digits, '_', '.' and '/' (quote other keys)",
                    position=key_token.position,
                    token=key,
                )
        else:
            raise self.fail(key_token, "a key")
        op_token = self.next()
        if op_token.kind != "op":
            raise self.fail(op_token, "an operator (==, !=, in, notin, matches)")
        operator: Operator = _as_operator(op_token.text)
        if operator in ("in", "notin"):
            values = self.values()
        else:
            value_token = self.next()
            if value_token.kind not in ("word", "string"):
                raise self.fail(value_token, "a value")
            values = (value_token.text,)
        return Operation(key, operator, values)

    def values(self) -> tuple[str, ...]:
        token = self.next()
        if token.kind in ("word", "string"):
            return (token.text,)
        if token.kind != "lbracket":
            raise self.fail(token, "'[' or a value")
        values: list[str] = []
        while True:
            token = self.next()
            if token.kind in ("word", "string"):
                values.append(token.text)
            elif token.kind == "comma":
                continue
            elif token.kind == "rbracket":
                return tuple(values)
            else:
                raise self.fail(token, "a value, ',' or ']'")


def _as_operator(text: str) -> Operator:
    for op in ("==", "!=", "in", "notin", "matches"):
        if text == op:
            return op
    raise AssertionError(text)


def parse_selector(text: str) -> Selector:
    """Parse one selector string; raises :class:`SelectorError`."""
    return _Parser(text).parse()


def join_selectors(values: Iterable[str]) -> str | None:
    """Repeated query parameters joined with ``&&``; ``None`` when there are none."""
    parts = [v for v in values if v.strip()]
    return " && ".join(parts) if parts else None


def compile_selector(label_sel: str | None, field_sel: str | None) -> Matcher:
    """A predicate ``match(labels, fields)`` for one list request.

    Both selectors are parsed up front so a syntax error is a 400 before any object is
    read.  ``None`` or blank selectors match everything.
    """
    labels = parse_selector(label_sel) if label_sel else Selector(())
    fields = parse_selector(field_sel) if field_sel else Selector(())
    if not labels.operations and not fields.operations:
        return _match_all

    def match(label_values: Mapping[str, str], field_values: Mapping[str, str]) -> bool:
        return labels.matches(label_values) and fields.matches(field_values)

    return match


def _match_all(labels: Mapping[str, str], fields: Mapping[str, str]) -> bool:
    return True
