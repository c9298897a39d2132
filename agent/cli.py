"""``sensu-agent``: the command line, with Sensu's subcommands, flag names and help layout.

Why it looks like :mod:`backend.cli`: operators and automation call
``sensu-agent start -c /etc/sensu/agent.yml --backend-url ws://b1:8081
--backend-url ws://b2:8081 --subscriptions linux,web``; those must keep
working. Every flag defaults to a sentinel so only flags the user typed reach
:func:`agent.config.load_config` and override the file and the environment.
``--backend-url``, ``--subscriptions`` and other list/map flags may be repeated.

Exit codes: 0 ok; 2 for a usage or configuration error (one line per problem on
stderr, prefixed ``sensu-agent: ``); 1 when the agent cannot start (cache-dir
locked, API port in use, unreadable TLS files).
"""

from __future__ import annotations

import argparse
import difflib
import os
import platform
import sys
from collections.abc import Sequence
from typing import NoReturn

from backend.config import format_duration

from .config import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE, OPTIONS, ConfigError, Option, load_config
from .version import AGENT_VERSION, BUILD_SHA

__all__ = ["main", "start_help", "version_string"]

PROG = "sensu-agent"
_SENTINEL = object()
_TYPE_NAMES = {
    "str": "string", "int": "int", "bool": "", "float": "float",
    "strlist": "strings", "duration": "duration", "map": "stringToString",
}
_ROOT_HELP = f"""\
{PROG} runs the Sensu agent: it connects to a Sensu backend, sends keepalives,
executes check requests and forwards events from its local API.

Usage:
  {PROG} [command]

Available Commands:
  help        Help about any command
  start       start the sensu agent
  version     Show the sensu-agent version information

Flags:
  -h, --help   help for {PROG}

Use "{PROG} [command] --help" for more information about a command.
"""
_VERSION_HELP = f"""\
Show the sensu-agent version information

Usage:
  {PROG} version [flags]

Flags:
  -h, --help   help for version
"""


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


def _build_parser() -> _Parser:
    parser = _Parser(prog=f"{PROG} start", add_help=False, allow_abbrev=False)
    parser.add_argument("-h", "--help", action="store_true", default=False)
    for option in OPTIONS:
        names = ([f"-{option.short}"] if option.short else []) + [f"--{option.key}"]
        action = _Accumulate if option.kind in ("strlist", "map") else "store"
        parser.add_argument(*names, dest=option.key, default=_SENTINEL, action=action, metavar="VALUE")
    return parser


def _expand_bools(args: Sequence[str]) -> list[str]:
    """``--deregister`` means ``--deregister=true``; a value needs ``=``, as in pflag."""
    bools = {f"--{o.key}" for o in OPTIONS if o.kind == "bool"}
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            out.extend(args[i:])
            break
        out.append(f"{arg}=true" if arg in bools else arg)
    return out


def parse_start_args(args: Sequence[str]) -> tuple[bool, dict[str, object]]:
    """Return (help requested, {key: raw value} for flags actually typed)."""
    namespace = _build_parser().parse_args(_expand_bools(args))
    typed = {o.key: getattr(namespace, o.key) for o in OPTIONS if getattr(namespace, o.key) is not _SENTINEL}
    return bool(namespace.help), typed


def _default_text(option: Option) -> str:
    value = option.default
    if option.key == "config-file":
        return f' (default "{DEFAULT_CONFIG_FILE}", env {CONFIG_FILE_ENV})'
    if option.key == "name":
        return " (default hostname)"
    if option.kind == "bool" or value in ("", (), {}) or (option.kind == "duration" and value == 0):
        return ""
    if option.kind == "str":
        return f' (default "{value}")'
    if option.kind == "strlist":
        return f" (default [{','.join(value)}])"
    if option.kind == "duration":
        return f" (default {format_duration(value)})"
    return f" (default {value:g})" if isinstance(value, float) else f" (default {value})"


def start_help() -> str:
    """``sensu-agent start --help``; accepted-but-ignored keys are listed apart."""
    heads = [len(f"      --{o.key} {_TYPE_NAMES[o.kind]}".rstrip()) for o in OPTIONS]
    width = max(heads + [len("  -h, --help")])

    def lines(options: Sequence[Option]) -> list[str]:
        out = []
        for option in sorted(options, key=lambda o: o.key):
            head = f"  -{option.short}, --{option.key}" if option.short else f"      --{option.key}"
            if _TYPE_NAMES[option.kind]:
                head += f" {_TYPE_NAMES[option.kind]}"
            out.append(f"{head.ljust(width)}   {option.help}{_default_text(option)}")
        return out

    honoured = [o for o in OPTIONS if not o.ignored]
    ignored = [o for o in OPTIONS if o.ignored]
    help_line = f"{'  -h, --help'.ljust(width)}   help for start"
    flag_lines = sorted(lines(honoured) + [help_line], key=lambda s: s.split("--", 1)[1])
    return "\n".join([
        "start the sensu agent", "", "Usage:", f"  {PROG} start [flags]", "", "Flags:", *flag_lines, "",
        "Accepted for compatibility, no effect (this agent has no socket, StatsD or asset support):",
        *lines(ignored), "",
        "Every flag can also be set as SENSU_<FLAG> (e.g. SENSU_BACKEND_URL) or as a key in the config file.",
        "",
    ])


def version_string() -> str:
    """``sensu-agent version <semver>+ce, community edition[, build <sha>], built with Python <x.y.z>``."""
    parts = [f"{PROG} version {AGENT_VERSION}+ce", "community edition"]
    if BUILD_SHA:
        parts.append(f"build {BUILD_SHA}")
    parts.append(f"built with Python {platform.python_version()}")
    return ", ".join(parts)


def _cmd_start(args: Sequence[str]) -> int:
    wants_help, typed = parse_start_args(args)
    if wants_help:
        sys.stdout.write(start_help())
        return 0
    config = load_config(typed, os.environ)
    # Imported once the configuration is valid; agent.run owns logging, signals and the exit code.
    from .agent import run

    try:
        return int(run(config))
    except KeyboardInterrupt:
        return 130


def _cmd_version(args: Sequence[str]) -> int:
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(_VERSION_HELP)
        return 0
    if args:
        raise UsageError(f'unexpected argument "{args[0]}" for "{PROG} version"')
    print(version_string())
    return 0


def _cmd_help(args: Sequence[str]) -> int:
    topic = args[0] if args else ""
    texts = {"": _ROOT_HELP, "start": start_help(), "version": _VERSION_HELP, "help": _ROOT_HELP}
    if topic not in texts:
        raise UsageError(f'unknown help topic "{topic}"')
    sys.stdout.write(texts[topic])
    return 0


_COMMANDS = {"start": _cmd_start, "version": _cmd_version, "help": _cmd_help}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sensu-agent`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(_ROOT_HELP)
        return 0
    command, rest = args[0], args[1:]
    try:
        handler = _COMMANDS.get(command)
        if handler is None:
            close = difflib.get_close_matches(command, list(_COMMANDS), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise UsageError(f'unknown command "{command}" for "{PROG}"{hint}')
        return handler(rest)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        for error in exc.errors:
            print(f"{PROG}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
