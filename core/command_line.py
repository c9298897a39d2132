"""pflag-like command lines, shared by ``sensu-backend`` and ``sensu-agent``.

Why one module: both programs must parse and report flags the way Sensu's Go
binaries do (``--debug`` alone means true, repeatable list and map flags, one
line naming the flag on a mistake, exit code 2), and print help in cobra's
layout. Each program keeps its own commands, help texts and defaults
(:mod:`backend.cli`, :mod:`agent.cli`); this module holds what they share.
"""

from __future__ import annotations

import argparse
import difflib
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

from core.config_values import ConfigError, Option

__all__ = [
    "UsageError",
    "flag_lines",
    "help_width",
    "parse_flags",
    "run_command",
    "version_command",
    "version_help",
    "version_string",
]

_SENTINEL = object()
_TYPE_NAMES = {
    "str": "string", "int": "int", "bool": "", "float": "float",
    "strlist": "strings", "duration": "duration", "map": "stringToString",
}


class UsageError(Exception):
    """A command-line mistake; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(_reword(message, self))


def _reword(message: str, parser: argparse.ArgumentParser) -> str:
    """Turn argparse's wording into pflag-like one-liners naming the flag."""
    if message.startswith("unrecognized arguments: "):
        first = message.removeprefix("unrecognized arguments: ").split()[0]
        if first.startswith("-"):
            name = first.split("=", 1)[0]
            known = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"unknown flag: {name}{hint}"
        return f'unexpected argument "{first}"'
    if message.startswith("argument "):
        return "flag " + message.removeprefix("argument ")
    return message


class _Accumulate(argparse.Action):
    """Repeatable flag (pflag ``strings`` / ``stringToString``): values append."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest)
        items = [] if current is _SENTINEL else list(current)
        items.append(values)
        setattr(namespace, self.dest, items)


def _build_parser(options: Sequence[Option], prog: str) -> _Parser:
    parser = _Parser(prog=prog, add_help=False, allow_abbrev=False)
    parser.add_argument("-h", "--help", action="store_true", default=False)
    for option in options:
        names = ([f"-{option.short}"] if option.short else []) + [f"--{option.key}"]
        action = _Accumulate if option.kind in ("strlist", "map") else "store"
        parser.add_argument(*names, dest=option.key, default=_SENTINEL, action=action, metavar="VALUE")
    return parser


def _expand_bools(args: Sequence[str], options: Sequence[Option]) -> list[str]:
    """``--debug`` means ``--debug=true``; a value needs ``=`` (``--debug=false``), as in pflag."""
    bools = {f"--{o.key}" for o in options if o.kind == "bool"}
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            out.extend(args[i:])
            break
        out.append(f"{arg}=true" if arg in bools else arg)
    return out


def parse_flags(options: Sequence[Option], prog: str, args: Sequence[str]) -> tuple[bool, dict[str, object]]:
    """Return (help requested, {key: raw value} for flags actually typed).

    Every flag defaults to a sentinel (as hypercorn's ``__main__`` does), so only
    flags the user typed override the file and the environment.
    """
    namespace = _build_parser(options, prog).parse_args(_expand_bools(args, options))
    typed = {o.key: getattr(namespace, o.key) for o in options if getattr(namespace, o.key) is not _SENTINEL}
    return bool(namespace.help), typed


def help_width(options: Sequence[Option]) -> int:
    """The column where help text starts, as cobra aligns it."""
    heads = [len(f"      --{o.key} {_TYPE_NAMES[o.kind]}".rstrip()) for o in options]
    return max(heads + [len("  -h, --help")])


def flag_lines(options: Sequence[Option], width: int, default_text: Callable[[Option], str]) -> list[str]:
    """One help line per option, sorted by key: ``  -c, --config-file string   help (default ...)``."""
    lines = []
    for option in sorted(options, key=lambda o: o.key):
        head = f"  -{option.short}, --{option.key}" if option.short else f"      --{option.key}"
        type_name = _TYPE_NAMES[option.kind]
        if type_name:
            head += f" {type_name}"
        lines.append(f"{head.ljust(width)}   {option.help}{default_text(option)}")
    return lines


def version_string(prog: str, version: str, build_sha: str) -> str:
    """``<prog> version <semver>+ce, community edition[, build <sha>], built with Python <x.y.z>``."""
    parts = [f"{prog} version {version}+ce", "community edition"]
    if build_sha:
        parts.append(f"build {build_sha}")
    parts.append(f"built with Python {platform.python_version()}")
    return ", ".join(parts)


def version_help(prog: str) -> str:
    return f"""\
Show the {prog} version information

Usage:
  {prog} version [flags]

Flags:
  -h, --help   help for version
"""


def version_command(prog: str, version: str, build_sha: str) -> Callable[[Sequence[str]], int]:
    """The ``version`` subcommand: its help, or the version line."""

    def run(args: Sequence[str]) -> int:
        if any(a in ("-h", "--help") for a in args):
            sys.stdout.write(version_help(prog))
            return 0
        if args:
            raise UsageError(f'unexpected argument "{args[0]}" for "{prog} version"')
        print(version_string(prog, version, build_sha))
        return 0

    return run


def run_command(prog: str, argv: Sequence[str] | None, root_help: str,
                commands: Mapping[str, Callable[[Sequence[str]], int]]) -> int:
    """Dispatch to a subcommand; a usage or configuration error is one line per problem and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(root_help)
        return 0
    command, rest = args[0], args[1:]
    try:
        handler = commands.get(command)
        if handler is None:
            close = difflib.get_close_matches(command, list(commands), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise UsageError(f'unknown command "{command}" for "{prog}"{hint}')
        return handler(rest)
    except UsageError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        for error in exc.errors:
            print(f"{prog}: {error}", file=sys.stderr)
        return 2
