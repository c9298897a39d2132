"""A cheap syntax screen for the JavaScript expressions in filters and asset filters.

Go parses them with otto and rejects a filter whose expression does not parse (spec
§2.7, §2.10).  We have no ES5 parser at the API edge, so this module catches what a
user most often gets wrong: an empty expression, an unterminated string or comment, and
unbalanced ``()``, ``[]`` and ``{}``.  It must never reject a valid expression, so it
errs on the side of accepting (regular-expression literals are recognised with the
usual "what came before the slash" rule).  The pipeline's JS engine remains the final
judge at evaluation time.
"""

from __future__ import annotations

from typing import Final

__all__ = ["js_syntax_error"]

_OPENERS: Final = {"(": ")", "[": "]", "{": "}"}
_CLOSERS: Final = {")", "]", "}"}
# After one of these (or at the start), a "/" begins a regular-expression literal.
_REGEX_PRECEDERS: Final = set("(,=:[!&|?{};+-*%<>~^")
_REGEX_KEYWORDS: Final = {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else"}


def _skip_regex(src: str, i: int) -> int:
    """Index just past the regex literal starting at ``src[i] == "/"``, or -1 if unterminated."""
    n = len(src)
    i += 1
    in_class = False
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c in "\r\n":
            return -1
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
        elif c == "/":
            i += 1
            while i < n and (src[i].isalnum() or src[i] in "_$"):
                i += 1
            return i
        i += 1
    return -1


def js_syntax_error(src: str) -> str | None:
    """A short description of an obvious syntax error in ``src``, or ``None``.

    >>> js_syntax_error("event.check.status == 1") is None
    True
    >>> js_syntax_error("event.check.status == (1")
    'unbalanced "(" at offset 22'
    """
    if not src.strip():
        return "expression must not be empty"
    stack: list[tuple[str, int]] = []
    n = len(src)
    i = 0
    last_sig = ""  # last significant (non-space) character outside literals
    last_word = ""
    while i < n:
        c = src[i]
        if c in "\"'`":
            start = i
            i += 1
            while i < n and src[i] != c:
                if src[i] == "\\":
                    i += 1
                elif src[i] in "\r\n" and c != "`":
                    return f"unterminated string at offset {start}"
                i += 1
            if i >= n:
                return f"unterminated string at offset {start}"
            i += 1
            last_sig, last_word = c, ""
            continue
        if c == "/" and i + 1 < n and src[i + 1] == "/":
            while i < n and src[i] not in "\r\n":
                i += 1
            continue
        if c == "/" and i + 1 < n and src[i + 1] == "*":
            end = src.find("*/", i + 2)
            if end < 0:
                return f"unterminated comment at offset {i}"
            i = end + 2
            continue
        if c == "/" and (last_sig == "" or last_sig in _REGEX_PRECEDERS or last_word in _REGEX_KEYWORDS):
            start = i
            i = _skip_regex(src, i)
            if i < 0:
                return f"unterminated regular expression at offset {start}"
            last_sig, last_word = "/", ""
            continue
        if c.isspace():
            i += 1
            continue
        if c.isalnum() or c in "_$":
            start = i
            while i < n and (src[i].isalnum() or src[i] in "_$"):
                i += 1
            last_word = src[start:i]
            last_sig = "a"
            continue
        if c in _OPENERS:
            stack.append((c, i))
        elif c in _CLOSERS:
            if not stack or _OPENERS[stack[-1][0]] != c:
                return f'unexpected "{c}" at offset {i}'
            stack.pop()
        last_sig, last_word = c, ""
        i += 1
    if stack:
        opener, at = stack[-1]
        return f'unbalanced "{opener}" at offset {at}'
    return None
