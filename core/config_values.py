"""Typed configuration values, shared by ``sensu-backend`` and ``sensu-agent``.

Why one module: both programs read the same kinds of values from a YAML file,
``SENSU_*`` variables and pflag-style flags, and an operator must meet the same
rules and the same wording in both (runtime.md §2.1): ``15s`` is a duration
everywhere, ``a,b`` or ``a b`` a list, ``k=v`` or a JSON object a map, and a bad
value is one line naming the key and where it came from. Each program keeps its
own keys, defaults and cross-checks (:mod:`backend.config`, :mod:`agent.config`).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import yaml

from .durations import parse_go_duration

__all__ = [
    "DEFAULT_SOURCE",
    "BadValue",
    "ConfigError",
    "Kind",
    "Layers",
    "Option",
    "convert_value",
    "default_value",
    "format_duration",
    "normalize_flags",
    "parse_duration",
    "plain_values",
    "read_config_file",
    "resolve_layers",
    "show_value",
    "suggest_key",
]

DEFAULT_SOURCE = "default"

Kind = Literal["str", "int", "bool", "float", "strlist", "duration", "map"]


@dataclass(frozen=True, slots=True)
class Option:
    """One configuration key: its Sensu spelling, type, default and help text.

    ``ignored`` holds the reason an accepted key has no effect (the agent's
    socket and StatsD keys); ``unsupported`` the reason any non-default value is
    refused because the program cannot honour it.
    """

    key: str
    kind: Kind
    default: Any
    group: str
    help: str
    short: str | None = None
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    ignored: str | None = None
    unsupported: str | None = None

    @property
    def attr(self) -> str:
        """The snake_case attribute name on the program's config class."""
        return self.key.replace("-", "_")


def _is_cli_source(source: str | None) -> bool:
    return source is not None and source.startswith(("flag ", "env "))


class ConfigError(Exception):
    """A configuration problem, rendered as one line naming the key and where it came from.

    ``source`` is the config file path, ``env SENSU_BACKEND_X`` (``env SENSU_X`` for the agent), ``flag --x``,
    ``default`` or None; ``key`` is the Sensu key (None for whole-file problems).
    ``errors`` holds every problem found in the same pass, this one first.
    """

    def __init__(self, key: str | None, source: str | None, message: str) -> None:
        super().__init__(key, source, message)
        self.key = key
        self.source = source
        self.message = message
        self.errors: tuple[ConfigError, ...] = (self,)

    def __str__(self) -> str:
        parts: list[str] = []
        if self.source and self.source != DEFAULT_SOURCE:
            parts.append(self.source)
        # A flag or variable already names its key; a file or default does not.
        if self.key and not _is_cli_source(self.source):
            parts.append(self.key)
        parts.append(self.message)
        return ": ".join(parts)

    def __repr__(self) -> str:
        return f"ConfigError(key={self.key!r}, source={self.source!r}, message={self.message!r})"


class BadValue(ValueError):
    """A value that cannot be converted; the message reads after ``key: ``."""


# ---------------------------------------------------------------------------------
# Scalars and durations
# ---------------------------------------------------------------------------------


def show_value(value: object) -> str:
    """Render a rejected value the way an operator typed it (strings in double quotes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


_TRUE = {"1", "t", "true", "y", "yes", "on"}
_FALSE = {"0", "f", "false", "n", "no", "off"}
_INT_RE = re.compile(r"^[+-]?\d+$")


def parse_duration(text: str) -> float:
    """Parse a Go duration (``15s``, ``1440m``, ``1h30m``, ``10ms``) into seconds.

    A bare number is seconds, as Sensu reads ``agent-write-timeout: 15`` and as
    ``init --timeout 5`` is read; surrounding spaces are ignored. Anything else is
    Go's grammar (:func:`core.durations.parse_go_duration`). Raises ``ValueError``.
    """
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"invalid duration {show_value(text)}")
        return value
    try:
        return parse_go_duration(s)
    except ValueError as exc:
        raise ValueError(f'invalid duration {show_value(text)} (use e.g. "15s", "10m", "1h30m")') from exc


def format_duration(seconds: float) -> str:
    """Format seconds the way Go prints a ``time.Duration`` (``15s``, ``1m0s``, ``24h0m0s``, ``10ms``)."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)

    def num(x: float) -> str:
        return f"{x:.9f}".rstrip("0").rstrip(".")

    if s < 1e-6:
        return f"{sign}{num(s * 1e9)}ns"
    if s < 1e-3:
        return f"{sign}{num(s * 1e6)}µs"
    if s < 1:
        return f"{sign}{num(s * 1e3)}ms"
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{int(hours)}h{int(minutes)}m{num(secs)}s"
    if minutes:
        return f"{sign}{int(minutes)}m{num(secs)}s"
    return f"{sign}{num(secs)}s"


def _to_str(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise BadValue(f"expected a string, got {show_value(value)}")


def _to_int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        return int(value.strip())
    raise BadValue(f"expected an integer, got {show_value(value)}")


def _to_float(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise BadValue(f"expected a number, got {show_value(value)}") from None
    else:
        raise BadValue(f"expected a number, got {show_value(value)}")
    if not math.isfinite(result):
        raise BadValue(f"expected a finite number, got {show_value(value)}")
    return result


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise BadValue(f"expected a boolean (true or false), got {show_value(value)}")


def _to_strlist(value: object) -> tuple[str, ...]:
    """A YAML list, a repeated flag, or a string split on commas and whitespace (viper)."""
    if isinstance(value, str):
        return tuple(p for p in re.split(r"[,\s]+", value) if p)
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for item in value:
            if isinstance(item, (list, tuple, dict)) or item is None or isinstance(item, bool):
                raise BadValue(f"expected a list of strings, got {show_value(value)}")
            out.extend(_to_strlist(_to_str(item)))
        return tuple(out)
    raise BadValue(f"expected a list of strings or a comma-separated string, got {show_value(value)}")


def _to_duration(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise BadValue(f"expected a duration, got {show_value(value)}")
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise BadValue(f"expected a duration such as 15s or 10m, got {show_value(value)}") from exc
    raise BadValue(f"expected a duration such as 15s or 10m, got {show_value(value)}")


def _pairs_to_map(text: str, whole: object) -> dict[str, str]:
    stripped = text.strip()
    if stripped.startswith("{"):
        # SENSU_LABELS='{"region": "eu"}' is how Sensu documents maps in the environment.
        try:
            data = json.loads(stripped)
        except ValueError:
            raise BadValue(f"expected a JSON object or key=value[,key=value...], got {show_value(whole)}") from None
        return dict(_to_map(data))
    result: dict[str, str] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise BadValue(f"expected key=value[,key=value...], got {show_value(whole)}")
        result[k.strip()] = v.strip()
    return result


def _to_map(value: object) -> Mapping[str, str]:
    result: dict[str, str] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or isinstance(v, (list, dict)) or v is None or isinstance(v, bool):
                raise BadValue(f"expected a mapping of strings, got {show_value(value)}")
            result[k] = _to_str(v)
    elif isinstance(value, str):
        result = _pairs_to_map(value, value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            result.update(_pairs_to_map(_to_str(item), value))
    else:
        raise BadValue(f"expected a mapping or key=value[,key=value...], got {show_value(value)}")
    return MappingProxyType(result)


_CONVERTERS: Mapping[str, Callable[[object], Any]] = {
    "str": _to_str,
    "int": _to_int,
    "bool": _to_bool,
    "float": _to_float,
    "strlist": _to_strlist,
    "duration": _to_duration,
    "map": _to_map,
}


def convert_value(option: Option, value: object) -> Any:
    """Convert and range-check one value; raises ``BadValue``."""
    result = _CONVERTERS[option.kind](value)
    if option.choices is not None and result not in option.choices:
        allowed = ", ".join(c for c in option.choices if c)
        raise BadValue(f"expected one of [{allowed}], got {show_value(value)}")
    if option.minimum is not None and result < option.minimum:
        raise BadValue(_range_message(option, value))
    if option.maximum is not None and result > option.maximum:
        raise BadValue(_range_message(option, value))
    return result


def _range_message(option: Option, value: object) -> str:
    def show(x: float | None) -> str:
        if x is None:
            return "?"
        return format_duration(x) if option.kind == "duration" else f"{x:g}"

    if option.maximum is None:
        return f"must be at least {show(option.minimum)}, got {show_value(value)}"
    return f"must be between {show(option.minimum)} and {show(option.maximum)}, got {show_value(value)}"


# ---------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: the last one silently winning hides typos."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {show_value(key)}", key_node.start_mark
            )
        if isinstance(key, (str, int, float, bool)):
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_config_file(path: str, *, explicit: bool, named_by: str = DEFAULT_SOURCE) -> dict[object, object]:
    """Read ``backend.yml`` or ``agent.yml`` into a plain mapping of key -> YAML value.

    A missing file is fine only when it is the default location (``explicit``
    false), as in Sensu. Raises ``ConfigError`` (source = ``path``) for a missing
    named file, an unreadable file, bad YAML (with its line) or a top level that
    is not a mapping. Keys are not checked here; :func:`load_config` does that.
    """
    return _read_config_file_found(path, explicit=explicit, named_by=named_by)[0]


def _read_config_file_found(path: str, *, explicit: bool, named_by: str) -> tuple[dict[object, object], bool]:
    """:func:`read_config_file`, also telling whether the file existed."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        if not explicit:
            return {}, False
        raise ConfigError(None, path, f"config file not found (named by {named_by})") from None
    except IsADirectoryError:
        raise ConfigError(None, path, "cannot read config file: is a directory") from None
    except PermissionError:
        raise ConfigError(None, path, "cannot read config file: permission denied") from None
    except UnicodeDecodeError:
        raise ConfigError(None, path, "cannot read config file: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(None, path, f"cannot read config file: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(None, path, f"{where}invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(None, path, f"invalid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}, True
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__} value"
        raise ConfigError(None, path, f"expected a mapping of keys to values at the top level, got {kind}")
    return data, True
def suggest_key(key: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(key.replace("_", "-").lower(), list(candidates), n=1, cutoff=0.75)
    return f' (did you mean "{close[0]}"?)' if close else ""


def normalize_flags(argv_values: Mapping[str, object], known: Mapping[str, Option]) -> dict[str, object]:
    """Flags as typed (``agent_port`` or ``agent-port``) keyed by their Sensu spelling; unknown ones refused."""
    flags: dict[str, object] = {}
    for raw_key, value in argv_values.items():
        key = raw_key.replace("_", "-")
        if key not in known:
            raise ConfigError(key, f"flag --{key}", f"unknown flag{suggest_key(key, known)}")
        flags[key] = value
    return flags


def _config_file_location(flags: Mapping[str, object], environ: Mapping[str, str], *,
                         env: str, default: str) -> tuple[str, str, bool]:
    """Return (path, source, explicit): ``-c``/``--config-file``, then ``env``, then ``default``."""
    if "config-file" in flags:
        try:
            return _to_str(flags["config-file"]), "flag --config-file", True
        except BadValue as exc:
            raise ConfigError("config-file", "flag --config-file", str(exc)) from None
    if environ.get(env):
        return environ[env], f"env {env}", True
    return default, DEFAULT_SOURCE, False


def default_value(option: Option) -> Any:
    """An option's default as a config object holds it (maps read-only)."""
    value = option.default
    return MappingProxyType(dict(value)) if isinstance(value, dict) else value


def plain_values(config: Any, options: Iterable[Option]) -> dict[str, Any]:
    """Key -> plain value (lists, dicts, seconds) of a resolved config, for logging and debugging."""
    out: dict[str, Any] = {}
    for option in options:
        value = getattr(config, option.attr)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[option.key] = value
    return out


@dataclass
class Layers:
    """What :func:`resolve_layers` found, before the program's own checks.

    ``values`` holds converted values by attribute name, ``sources`` where each
    key's value came from, ``raw`` the unconverted value and source of every key
    that was set, ``errors`` every problem so far.
    """

    values: dict[str, Any]
    sources: dict[str, str]
    raw: dict[str, tuple[object, str]]
    file_found: bool
    errors: list[ConfigError] = field(default_factory=list)

    def value(self, key: str) -> Any:
        """The converted value of a Sensu-spelled key, for the program's cross-checks."""
        return self.values[key.replace("-", "_")]

    def err(self, key: str, message: str) -> None:
        """A cross-key problem, blamed on where ``key``'s value came from."""
        self.errors.append(ConfigError(key, self.sources[key], message))

    def pick(self, *keys: str) -> str:
        """The first key the user actually set (else the first), for blame."""
        return next((k for k in keys if self.sources[k] != DEFAULT_SOURCE), keys[0])

    def raise_errors(self) -> None:
        """Raise the first problem, with all of them on ``.errors``, so a file is fixed in one pass."""
        if self.errors:
            first = self.errors[0]
            first.errors = tuple(self.errors)
            raise first


def resolve_layers(options: Iterable[Option], argv_values: Mapping[str, object], environ: Mapping[str, str], *,
                   env_name: Callable[[str], str], default_config_file: str,
                   aliases: Mapping[str, str] | None = None) -> Layers:
    """Resolve defaults < config file < environment < flags, as viper does for Sensu.

    ``argv_values`` holds only the flags the user typed, raw. ``aliases`` maps an
    old key to its new name: within one layer only one of them may be set.
    A key we do not know or a value of the wrong type is collected as an error,
    never ignored. Pure apart from reading the config file.
    """
    options = tuple(options)
    known = {o.key: o for o in options}
    flags = normalize_flags(argv_values, known)
    config_env = env_name("config-file")
    path, path_source, explicit = _config_file_location(flags, environ, env=config_env, default=default_config_file)
    file_values, file_found = _read_config_file_found(path, explicit=explicit, named_by=path_source)

    errors: list[ConfigError] = []
    file_layer: dict[str, tuple[object, str]] = {}
    for key, value in file_values.items():
        if not isinstance(key, str):
            errors.append(ConfigError(None, path, f"keys must be strings, got {show_value(key)}"))
        elif key == "config-file":
            errors.append(ConfigError(key, path, f"cannot be set inside the config file (use -c or {config_env})"))
        elif key not in known:
            errors.append(ConfigError(key, path, f"unknown key{suggest_key(key, known)}"))
        elif value is not None:  # "key:" with no value keeps the default, as viper does
            file_layer[key] = (value, path)
    env_layer: dict[str, tuple[object, str]] = {}
    for option in options:
        name = env_name(option.key)
        if option.key != "config-file" and environ.get(name):  # viper ignores empty variables
            env_layer[option.key] = (environ[name], f"env {name}")
    flag_layer = {k: (v, f"flag --{k}") for k, v in flags.items() if k != "config-file"}

    raw: dict[str, tuple[object, str]] = {}
    for layer in (file_layer, env_layer, flag_layer):
        for alias, canonical in (aliases or {}).items():
            if alias in layer and canonical in layer:
                errors.append(ConfigError(alias, layer[alias][1], f"is the 5.0 name of {canonical}; set only one of them"))
            elif alias in layer:
                layer[canonical] = layer[alias]
        raw.update(layer)
    raw["config-file"] = (path, path_source)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in options:
        value, source = raw.get(option.key, (option.default, DEFAULT_SOURCE))
        try:
            values[option.attr] = convert_value(option, value) if source != DEFAULT_SOURCE else default_value(option)
        except BadValue as exc:
            errors.append(ConfigError(option.key, source, str(exc)))
            values[option.attr] = default_value(option)
            source = DEFAULT_SOURCE  # so cross-checks do not pile on
        sources[option.key] = source
        if option.unsupported and source != DEFAULT_SOURCE and values[option.attr] != default_value(option):
            errors.append(ConfigError(option.key, source, option.unsupported))
    return Layers(values, sources, raw, file_found, errors)
