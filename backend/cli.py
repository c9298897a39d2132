"""``sensu-backend``: the command line, with Sensu's subcommands, flag names and help layout.

Why it looks like this: operators and automation already call ``sensu-backend
start -c /etc/sensu/backend.yml --log-level debug`` and ``sensu-backend init
--cluster-admin-username ...``; those must keep working. Flags are parsed by
:mod:`core.command_line` (shared with ``sensu-agent``), so only flags the
user typed reach :func:`backend.config.load_config` and override the file and
the environment.

Exit codes: 0 ok; 2 for a usage or configuration error (one line on stderr,
prefixed ``sensu-backend: ``); otherwise whatever ``backend.node.run`` or
``backend.init.run_init`` returns (init: 3 when already initialized).
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TextIO

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
from core.version import BUILD_SHA, SENSU_COMPAT_VERSION

__all__ = ["main", "version_string"]

PROG = "sensu-backend"
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


def start_help() -> str:
    """``sensu-backend start --help``, grouped like the Sensu 5.0 reference."""
    width = help_width(OPTIONS)
    general = [o for o in OPTIONS if o.group == "general"]
    store = [o for o in OPTIONS if o.group == "store"]
    help_line = f"{'  -h, --help'.ljust(width)}   help for start"
    general_lines = sorted(flag_lines(general, width, _default_text) + [help_line], key=lambda s: s.split("--", 1)[1])
    return "\n".join(
        ["start the sensu backend", "", "Usage:", f"  {PROG} start [flags]", "", "General Flags:",
         *general_lines, "", "Store Flags:", *flag_lines(store, width, _default_text), ""]
    )


def init_help() -> str:
    """``sensu-backend init --help``."""
    width = help_width(INIT_OPTIONS)
    help_line = f"{'  -h, --help'.ljust(width)}   help for init"
    lines = sorted(flag_lines(INIT_OPTIONS, width, _default_text) + [help_line], key=lambda s: s.split("--", 1)[1])
    return "\n".join(
        ["initialize a new sensu installation", "", "Usage:", f"  {PROG} init [flags]", "", "Flags:",
         *lines, "",
         "Environment: SENSU_BACKEND_CLUSTER_ADMIN_USERNAME, SENSU_BACKEND_CLUSTER_ADMIN_PASSWORD,",
         "SENSU_BACKEND_CLUSTER_ADMIN_API_KEY (and SENSU_BACKEND_<FLAG> for every flag).", ""]
    )


def version_string() -> str:
    """``sensu-backend version <semver>+ce, community edition[, build <sha>], built with Python <x.y.z>``."""
    return _version_string(PROG, SENSU_COMPAT_VERSION, BUILD_SHA)


def _cmd_start(args: Sequence[str]) -> int:
    wants_help, typed = parse_flags(OPTIONS, f"{PROG} start", args)
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
    wants_help, typed = parse_flags(INIT_OPTIONS, f"{PROG} init", args)
    if wants_help:
        sys.stdout.write(init_help())
        return 0
    options = load_init_options(typed, os.environ)
    if options.interactive:
        options = _prompt_missing(options, sys.stdin)
    from backend.init import run_init  # written separately

    return int(run_init(options))


def _cmd_help(args: Sequence[str]) -> int:
    topic = args[0] if args else ""
    texts = {"": _ROOT_HELP, "start": start_help(), "init": init_help(), "version": version_help(PROG),
             "help": _ROOT_HELP}
    if topic not in texts:
        raise UsageError(f'unknown help topic "{topic}"')
    sys.stdout.write(texts[topic])
    return 0


_COMMANDS = {"start": _cmd_start, "init": _cmd_init, "version": version_command(PROG, SENSU_COMPAT_VERSION, BUILD_SHA),
             "help": _cmd_help}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sensu-backend`` console script; returns the exit code."""
    return run_command(PROG, argv, _ROOT_HELP, _COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
