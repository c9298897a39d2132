"""``sensu-agent``: the command line, with Sensu's subcommands, flag names and help layout.

Why it looks like :mod:`backend.cli`: operators and automation call
``sensu-agent start -c /etc/sensu/agent.yml --backend-url ws://b1:8081
--backend-url ws://b2:8081 --subscriptions linux,web``; those must keep
working. Parsing and help layout are shared with the backend (:mod:`core.command_line`):
only flags the user typed reach :func:`agent.config.load_config` and override
the file and the environment.
``--backend-url``, ``--subscriptions`` and other list/map flags may be repeated.

Exit codes: 0 ok; 2 for a usage or configuration error (one line per problem on
stderr, prefixed ``sensu-agent: ``); 1 when the agent cannot start (cache-dir
locked, API port in use, unreadable TLS files).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from core.command_line import (
    UsageError,
    flag_lines,
    help_width,
    parse_flags,
    run_command,
    version_command,
    version_help,
)
from core.command_line import version_string as _version_string
from core.config_values import format_duration

from .config import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE, OPTIONS, Option, load_config
from .version import AGENT_VERSION, BUILD_SHA

__all__ = ["main", "start_help", "version_string"]

PROG = "sensu-agent"
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


def parse_start_args(args: Sequence[str]) -> tuple[bool, dict[str, object]]:
    """Return (help requested, {key: raw value} for flags actually typed)."""
    return parse_flags(OPTIONS, f"{PROG} start", args)


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
    width = help_width(OPTIONS)
    honoured = [o for o in OPTIONS if not o.ignored]
    ignored = [o for o in OPTIONS if o.ignored]
    help_line = f"{'  -h, --help'.ljust(width)}   help for start"
    flags = sorted(flag_lines(honoured, width, _default_text) + [help_line], key=lambda s: s.split("--", 1)[1])
    return "\n".join([
        "start the sensu agent", "", "Usage:", f"  {PROG} start [flags]", "", "Flags:", *flags, "",
        "Accepted for compatibility, no effect (this agent has no socket, StatsD or asset support):",
        *flag_lines(ignored, width, _default_text), "",
        "Every flag can also be set as SENSU_<FLAG> (e.g. SENSU_BACKEND_URL) or as a key in the config file.",
        "",
    ])


def version_string() -> str:
    """``sensu-agent version <semver>+ce, community edition[, build <sha>], built with Python <x.y.z>``."""
    return _version_string(PROG, AGENT_VERSION, BUILD_SHA)


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


def _cmd_help(args: Sequence[str]) -> int:
    topic = args[0] if args else ""
    texts = {"": _ROOT_HELP, "start": start_help(), "version": version_help(PROG), "help": _ROOT_HELP}
    if topic not in texts:
        raise UsageError(f'unknown help topic "{topic}"')
    sys.stdout.write(texts[topic])
    return 0


_COMMANDS = {"start": _cmd_start, "version": version_command(PROG, AGENT_VERSION, BUILD_SHA), "help": _cmd_help}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sensu-agent`` console script; returns the exit code."""
    return run_command(PROG, argv, _ROOT_HELP, _COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
