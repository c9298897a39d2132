"""``sensu-backend``: the command line, with Sensu's subcommands, flag names and help layout.

Why it looks like this: operators and automation already call ``sensu-backend
start -c /etc/sensu/backend.yml --log-level debug`` and ``sensu-backend init
--cluster-admin-username ...``; those must keep working. Every flag defaults to
a sentinel (as hypercorn's ``__main__`` does) so only flags the user typed reach
:func:`backend.config.load_config` and override the file and the environment.

Exit codes: 0 ok; 2 for a usage or configuration error (one line on stderr,
prefixed ``sensu-backend: ``); otherwise whatever ``backend.node.run`` or
``backend.init.run_init`` returns (init: 3 when already initialized).
"""

from __future__ import annotations

import argparse
import difflib
import getpass
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import NoReturn, TextIO

from backend.config import (
    DEFAULT_CONFIG_FILE,
    INIT_OPTIONS,
    OPTIONS,
    ConfigError,
    InitOptions,
    Option,
    format_duration,
    load_config,
    load_init_options,
)
from backend.version import BUILD_SHA, SENSU_COMPAT_VERSION

__all__ = ["main", "version_string"]

PROG = "sensu-backend"
_SENTINEL = object()
_TYPE_NAMES = {
    "str": "string", "int": "int", "bool": "", "float": "float",
    "strlist": "strings", "duration": "duration", "map": "stringToString",
}
_ROOT_HELP = f"""\
{PROG} runs the Sensu backend: the replicated store, check scheduling, event
processing, the REST API and the agent transport.

Usage:
  {PROG} [command]

Available Commands:
  help        Help about any command
  init        initialize a new sensu installation
  start       start the sensu backend
  version     Show the sensu-backend version information

Flags:
  -h, --help   help for {PROG}

Use "{PROG} [command] --help" for more information about a command.
"""
_VERSION_HELP = f"""\
Show the sensu-backend version information

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


def _build_parser(options: Sequence[Option], command: str) -> _Parser:
    parser = _Parser(prog=f"{PROG} {command}", add_help=False, allow_abbrev=False)
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


def _parse(options: Sequence[Option], command: str, args: Sequence[str]) -> tuple[bool, dict[str, object]]:
    """Return (help requested, {key: raw value} for flags actually typed)."""
    parser = _build_parser(options, command)
    namespace = parser.parse_args(_expand_bools(args, options))
    typed = {o.key: getattr(namespace, o.key) for o in options if getattr(namespace, o.key) is not _SENTINEL}
    return bool(namespace.help), typed


def _default_text(option: Option) -> str:
    value = option.default
    if option.key == "config-file":
        return f' (default "{DEFAULT_CONFIG_FILE}")'
    if option.kind == "bool" or value in ("", (), {}, 0.0) and option.kind in ("str", "strlist", "map", "duration"):
        return ""
    if option.kind == "str":
        return f' (default "{value}")'
    if option.kind == "strlist":
        return f" (default [{','.join(value)}])"
    if option.kind == "duration":
        return f" (default {format_duration(value)})"
    return f" (default {value})"


def _flag_lines(options: Sequence[Option], width: int) -> list[str]:
    lines = []
    for option in sorted(options, key=lambda o: o.key):
        head = f"  -{option.short}, --{option.key}" if option.short else f"      --{option.key}"
        type_name = _TYPE_NAMES[option.kind]
        if type_name:
            head += f" {type_name}"
        lines.append(f"{head.ljust(width)}   {option.help}{_default_text(option)}")
    return lines


def _help_width(options: Sequence[Option]) -> int:
    heads = [len(f"      --{o.key} {_TYPE_NAMES[o.kind]}".rstrip()) for o in options]
    return max(heads + [len("  -h, --help")])


def start_help() -> str:
    """``sensu-backend start --help``, grouped like the Sensu 5.0 reference."""
    width = _help_width(OPTIONS)
    general = [o for o in OPTIONS if o.group == "general"]
    store = [o for o in OPTIONS if o.group == "store"]
    help_line = f"{'  -h, --help'.ljust(width)}   help for start"
    general_lines = sorted(_flag_lines(general, width) + [help_line], key=lambda s: s.split("--", 1)[1])
    return "\n".join(
        ["start the sensu backend", "", "Usage:", f"  {PROG} start [flags]", "", "General Flags:",
         *general_lines, "", "Store Flags:", *_flag_lines(store, width), ""]
    )


def init_help() -> str:
    """``sensu-backend init --help``."""
    width = _help_width(INIT_OPTIONS)
    help_line = f"{'  -h, --help'.ljust(width)}   help for init"
    lines = sorted(_flag_lines(INIT_OPTIONS, width) + [help_line], key=lambda s: s.split("--", 1)[1])
    return "\n".join(
        ["initialize a new sensu installation", "", "Usage:", f"  {PROG} init [flags]", "", "Flags:",
         *lines, "",
         "Environment: SENSU_BACKEND_CLUSTER_ADMIN_USERNAME, SENSU_BACKEND_CLUSTER_ADMIN_PASSWORD,",
         "SENSU_BACKEND_CLUSTER_ADMIN_API_KEY (and SENSU_BACKEND_<FLAG> for every flag).", ""]
    )


def version_string() -> str:
    """``sensu-backend version <semver>+ce, community edition[, build <sha>], built with Python <x.y.z>``."""
    parts = [f"{PROG} version {SENSU_COMPAT_VERSION}+ce", "community edition"]
    if BUILD_SHA:
        parts.append(f"build {BUILD_SHA}")
    parts.append(f"built with Python {platform.python_version()}")
    return ", ".join(parts)


def _cmd_start(args: Sequence[str]) -> int:
    wants_help, typed = _parse(OPTIONS, "start", args)
    if wants_help:
        sys.stdout.write(start_help())
        return 0
    config = load_config(typed, os.environ)
    # Imported only once the configuration is valid; node.run owns logging setup,
    # signals and the exit code.
    from backend import node

    try:
        return int(node.run(config))
    except KeyboardInterrupt:
        return 130


def _prompt_missing(options: InitOptions, stdin: TextIO) -> InitOptions:
    """``--interactive``: ask for what flags and environment did not give (password twice)."""
    try:
        username = options.username
        if not username:
            sys.stderr.write("Cluster Admin Username: ")
            sys.stderr.flush()
            username = stdin.readline().strip()
        password = options.password
        if not password:
            password = getpass.getpass("Cluster Admin Password: ")
            if getpass.getpass("Retype Cluster Admin Password: ") != password:
                raise ConfigError("cluster-admin-password", None, "passwords do not match")
        api_key = options.api_key
        if not api_key:
            api_key = getpass.getpass("Cluster Admin API Key (optional): ").strip()
    except EOFError:
        raise ConfigError(None, "init", "interactive input ended before all answers were given") from None
    for key, value in (("cluster-admin-username", username), ("cluster-admin-password", password)):
        if not value:
            raise ConfigError(key, None, "required: must not be empty")
    return replace(options, username=username, password=password, api_key=api_key)


def _cmd_init(args: Sequence[str]) -> int:
    wants_help, typed = _parse(INIT_OPTIONS, "init", args)
    if wants_help:
        sys.stdout.write(init_help())
        return 0
    options = load_init_options(typed, os.environ)
    if options.interactive:
        options = _prompt_missing(options, sys.stdin)
    from backend.init import run_init  # written separately

    return int(run_init(options))


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
    texts = {"": _ROOT_HELP, "start": start_help(), "init": init_help(), "version": _VERSION_HELP,
             "help": _ROOT_HELP}
    if topic not in texts:
        raise UsageError(f'unknown help topic "{topic}"')
    sys.stdout.write(texts[topic])
    return 0


_COMMANDS = {"start": _cmd_start, "init": _cmd_init, "version": _cmd_version, "help": _cmd_help}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sensu-backend`` console script; returns the exit code."""
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
