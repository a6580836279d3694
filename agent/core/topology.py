"""The topology file: parse and validate its TOML into core.model.Topology, describe, dump.

Pure (stdlib only). The schema is DESIGN.md's "Topology file". Every refusal is an
agent.errors.TopologyError naming the file, the line where it can be found, the entry
and key in words (``FastAPI on Mac mini: port``; ``error.key`` keeps the dotted path
``nodes[2].services[0].port``) and why. All problems are collected: the error holds the
first one (``str(error)`` is that one line) and ``error.message`` lists them all, one
``FILE:LINE: WHERE: WHY`` per line. A misspelt key is one problem, with its fix
("unknown key 'chek' — did you mean 'check'?"), not also a missing required key.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import math
import re
import tomllib
from collections.abc import Sequence

from agent.core import cells
from agent.core.decoding import DocumentLimitError, finite_number, load_toml
from agent.core.model import Access, CheckKind, Defaults, Impact, Node, Service, Topology
from agent.errors import TopologyError

__all__ = [
    "NODE_ID_PATTERN",
    "OS_VALUES",
    "SUPPORTED_VERSION",
    "access_of",
    "consumers_of",
    "describe_topology",
    "dump_topology",
    "format_topology_duration",
    "parse_duration",
    "parse_topology",
    "quoted",
    "toml_string",
]

SUPPORTED_VERSION = 1
OS_VALUES = ("windows", "macos", "linux", "ios", "android", "freebsd", "other")
NODE_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
DEFAULT_NAME = "tailnet"
MAX_LISTED_PROBLEMS = 30

_ROOT_KEYS = ("version", "name", "defaults", "nodes")
_DEFAULTS_KEYS = (
    "interval",
    "timeout",
    "failure_threshold",
    "success_threshold",
    "latency_warn_ms",
    "access",
)
_NODE_KEYS = ("id", "name", "hostname", "ip", "os", "role", "always_on", "services")
_SERVICE_KEYS = (
    "name",
    "port",
    "check",
    "path",
    "expect_status",
    "expect_body",
    "impact",
    "access",
    "open",
    "consumers",
)
_PATH_CHECKS = (CheckKind.HTTP, CheckKind.WEBSOCKET)
_OS_ALIASES = {
    "darwin": "macos",
    "mac": "macos",
    "macosx": "macos",
    "osx": "macos",
    "win": "windows",
    "win32": "windows",
    "win64": "windows",
    "ubuntu": "linux",
    "debian": "linux",
}
# The values each choice accepts, listed once (iterating an Enum per service cost a tenth
# of a 505-service topology's validation).
_CHECK_VALUES = tuple(c.value for c in CheckKind)
_IMPACT_VALUES = tuple(i.value for i in Impact)
_ACCESS_VALUES = tuple(a.value for a in Access)

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# The patterns of a refused file alone are strings: re compiles (and caches) them at first use.
_SYNTAX_POS = r"\s*\(at line (\d+), column (\d+)\)\s*$"
_SYNTAX_END = r"\s*\(at end of document\)\s*$"

_Path = tuple[str | int, ...]
_Table = dict[str, object]
_MISSING = object()


# ==== public API ===============================================================


def parse_topology(text: str, source: str) -> Topology:
    """Parse and validate topology TOML; `source` names the file in errors and in the result.

    Raises TopologyError (all problems listed in its message) when the text is refused.
    """
    text = text.removeprefix("\ufeff")
    try:
        data = load_toml(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(source, text, error) from None
    except DocumentLimitError as error:
        raise TopologyError(source, f"TOML not read: {error}") from None
    checker = _Checker(source, text)
    topology = checker.topology(data)
    if checker.problems or topology is None:
        raise checker.error()
    return topology


def parse_duration(value: object) -> float:
    """Seconds from "10s", "500ms", "1m", "1.5s", "1h", "7d" or a bare number.

    ValueError unless the result is a finite number above 0.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError('a duration is a string like "10s" or a number of seconds')
    if isinstance(value, str):
        match = _DURATION_RE.fullmatch(value.strip())
        if match is None:
            shown = quoted(value)
            raise ValueError(
                f'{shown} is not a duration; write e.g. "10s", "500ms", "1m" or a number of seconds'
            )
        number, unit = match.groups()
        seconds = float(number) / 1000 if unit == "ms" else float(number) * _DURATION_UNITS[unit]
    else:
        number = finite_number(value)  # None for a huge integer, refused below as infinite
        seconds = math.inf if number is None else number
    if not math.isfinite(seconds) or seconds <= 0:
        shown = quoted(value) if isinstance(value, str) else _number(value)
        raise ValueError(f"must be more than 0 seconds, got {shown}")
    return seconds


def format_topology_duration(seconds: float) -> str:
    """The shortest of "1m", "10s", "1.5s", "500ms" that parse_duration reads back exactly:
    a duration as the topology file spells it (for people, figures.format_duration).

    `seconds` must be finite and > 0 (what parse_duration returns).
    """
    if seconds >= 1 and seconds == int(seconds):
        whole = int(seconds)
        return f"{whole // 60}m" if whole % 60 == 0 else f"{whole}s"
    if seconds < 1:
        millis = round(seconds * 1000)
        if millis >= 1 and millis / 1000 == seconds:
            return f"{millis}ms"
    from decimal import Decimal  # here: only such odd durations need it

    # repr is the shortest text that reads back exactly; Decimal spells it without exponent.
    return f"{Decimal(repr(seconds)):f}s"


def describe_topology(topology: Topology) -> str:
    """A readable multi-line description (for `tailnet-agent topology show`)."""
    d = topology.defaults
    lines = [
        f"{topology.name} (topology version {topology.version})",
        f"source: {topology.source}",
        f"defaults: interval {format_topology_duration(d.interval_s)}, "
        f"timeout {format_topology_duration(d.timeout_s)}, "
        f"failure_threshold {d.failure_threshold}, success_threshold {d.success_threshold}, "
        f"latency_warn_ms {_format_number(d.latency_warn_ms)}"
        + (f", access {d.access.value}" if d.access is not None else ""),
    ]
    for node in topology.nodes:
        always = "always on" if node.always_on else "not always on (offline is no alarm)"
        lines += [
            "",
            f"{node.id}: {node.name}",
            f"  ip {node.ip}, hostname {node.hostname}, os {node.os}, {always}",
        ]
        if node.role:
            lines.append(f"  role: {node.role}")
        if not node.services:
            lines.append("  services: none (only the link is watched)")
            continue
        lines.append("  services:")
        rows = [_service_row(topology, s) for s in node.services]
        widths = [max(cells.width(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            padded = [cells.ljust(cell, width) for cell, width in zip(row, widths, strict=False)]
            lines.append(("    " + "  ".join(padded) + "  " + row[-1]).rstrip())
    return "\n".join(lines) + "\n"


def dump_topology(topology: Topology) -> str:
    """TOML text that parse_topology reads back into an equal Topology (but for `source`)."""
    d = topology.defaults
    out = [
        f"version = {topology.version}",
        f"name = {toml_string(topology.name)}",
        "",
        "[defaults]",
        f"interval = {_toml_duration(d.interval_s)}",
        f"timeout = {_toml_duration(d.timeout_s)}",
        f"failure_threshold = {d.failure_threshold}",
        f"success_threshold = {d.success_threshold}",
        f"latency_warn_ms = {_format_number(d.latency_warn_ms)}",
    ]
    if d.access is not None:
        out.append(f"access = {toml_string(d.access.value)}")
    for node in topology.nodes:
        out += [
            "",
            "[[nodes]]",
            f"id = {toml_string(node.id)}",
            f"name = {toml_string(node.name)}",
            f"hostname = {toml_string(node.hostname)}",
            f"ip = {toml_string(node.ip)}",
            f"os = {toml_string(node.os)}",
            f"role = {toml_string(node.role)}",
            f"always_on = {_toml_bool(node.always_on)}",
        ]
        for s in node.services:
            out += [
                "",
                "  [[nodes.services]]",
                f"  name = {toml_string(s.name)}",
                f"  port = {s.port}",
                f"  check = {toml_string(s.check.value)}",
            ]
            if s.check in _PATH_CHECKS:
                out.append(f"  path = {toml_string(s.path)}")
            if s.expect_status:
                out.append(f"  expect_status = [{', '.join(str(c) for c in s.expect_status)}]")
            if s.expect_body is not None:
                out.append(f"  expect_body = {toml_string(s.expect_body)}")
            out.append(f"  impact = {toml_string(s.impact.value)}")
            if s.access is not None:
                out.append(f"  access = {toml_string(s.access.value)}")
            out.append(f"  open = {_toml_bool(s.open)}")
            if s.consumers is not None:
                listed = ", ".join(toml_string(c) for c in s.consumers)
                out.append(f"  consumers = [{listed}]")
    return "\n".join(out) + "\n"


def access_of(topology: Topology, service: Service) -> Access | None:
    """Where `service` may listen: its own `access`, else [defaults]' — None when neither
    says (the exposure audit then warns without colouring)."""
    return service.access if service.access is not None else topology.defaults.access


def consumers_of(topology: Topology, node: Node, service: Service) -> tuple[str, ...]:
    """The ids of the nodes that use `service` of `node`: its `consumers`, else every other
    node of the topology, in topology order."""
    if service.consumers is not None:
        return service.consumers
    return tuple(n.id for n in topology.nodes if n.id != node.id)


# ==== formatting helpers =======================================================


def _format_number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


# Line breaks json.dumps leaves as they are (str.splitlines and the menu break on them).
_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def quoted(text: str) -> str:
    """`text` in double quotes as a refusal shows it: on one line, escapes as in JSON."""
    return json.dumps(text, ensure_ascii=False).translate(_LINE_BREAKS)


def toml_string(value: str) -> str:
    """`value` as a TOML basic string (quoted and escaped)."""
    # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_bool(value: bool) -> str:
    return "true" if value else "false"


def _toml_duration(seconds: float) -> str:
    return toml_string(format_topology_duration(seconds))


def _service_row(topology: Topology, s: Service) -> list[str]:
    what = s.check.value
    if s.check in _PATH_CHECKS:
        what += f" {'GET ' if s.check is CheckKind.HTTP else ''}{s.path}"
    if s.expect_status:
        what += f" expect {','.join(str(c) for c in s.expect_status)}"
    if s.expect_body is not None:
        what += f" body contains {s.expect_body!r}"
    return [
        s.name,
        f"port {s.port}",
        what,
        s.impact.value,
        _access_words(topology, s),
        ("open in browser" if s.open else "") + _consumer_words(s),
    ]


def _access_words(topology: Topology, s: Service) -> str:
    access = access_of(topology, s)
    if access is None:
        return "access undeclared"
    return f"access {access.value}" + (" (defaults)" if s.access is None else "")


def _consumer_words(s: Service) -> str:
    if s.consumers is None:
        return ""
    used_by = ", ".join(s.consumers) if s.consumers else "no other node"
    return f"{'; ' if s.open else ''}used by {used_by}"


def _dotted(path: _Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
            out += f".{name}" if out else name
    return out


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime.datetime):
        return "a date-time"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, datetime.time):
        return "a time"
    return type(value).__name__  # pragma: no cover - tomllib yields nothing else


def _number(value: int | float) -> str:
    """A number as a refusal shows it: a 400-digit integer by its size, not its digits."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}… ({len(text)} digits)"


def _got(value: object) -> str:
    if isinstance(value, bool):
        return f"got {_toml_bool(value)}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"got a string ({quoted(shown)})"
    if isinstance(value, int | float):
        return f"got {_kind(value)} ({_number(value)})"
    return f"got {_kind(value)}"


def _wrong_type(expected: str, value: object) -> str:
    why = f"must be {expected}, {_got(value)}"
    if isinstance(value, str):
        bare = value.strip()
        if expected.startswith(("an integer", "a number")) and re.fullmatch(
            r"[+-]?\d+(\.\d+)?", bare
        ):
            why += "; write it without quotes"
        elif expected.startswith("true or false") and bare.lower() in ("true", "false"):
            why += f"; write {bare.lower()} without quotes"
    elif expected == "a string" and isinstance(value, int | float):
        why += "; put it in quotes"
    return why


def _suggest(word: str, choices: Sequence[str]) -> str:
    lowered = word.lower()
    if lowered != word and lowered in choices:
        return f"; did you mean '{lowered}'?"
    close = _close_matches(lowered, choices)
    return f"; did you mean '{close[0]}'?" if close else ""


def _close_key(key: str, allowed: Sequence[str]) -> str | None:
    """The allowed key `key` is a misspelling of, if one is close."""
    lowered = key.lower()
    if lowered != key and lowered in allowed:
        return lowered
    close = _close_matches(lowered, allowed)
    return close[0] if close else None


def _close_matches(word: str, choices: Sequence[str]) -> list[str]:
    import difflib  # here: only a topology with a mistake in it needs it

    return difflib.get_close_matches(word, choices, n=1, cutoff=0.6)


def _unknown_key(key: str, allowed: Sequence[str]) -> str:
    shown = quoted(key)[1:-1]
    close = _close_key(key, allowed)
    if close is not None:
        return f"unknown key '{shown}' — did you mean '{close}'?"
    return f"unknown key '{shown}' (allowed here: {', '.join(allowed)})"


def _one_line(name: str, limit: int = 40) -> str:
    """A name as one short line: control characters and runs of blanks become one space."""
    flat = " ".join("".join(" " if ord(c) < 0x20 or c == "\x7f" else c for c in name).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _short(name: str) -> str:
    """ "Mac mini — Backend Server" -> "Mac mini" (as core.health.short_name, on raw text)."""
    for dash in (" — ", " – ", " - "):
        if dash in name:
            return name.split(dash, 1)[0].strip()
    return name.strip()


# ==== syntax errors ============================================================


def _syntax_error(source: str, text: str, error: tomllib.TOMLDecodeError) -> TopologyError:
    message = str(error)
    line: int | None = None
    position = re.search(_SYNTAX_POS, message)
    if position is not None:
        line = int(position.group(1))
        message = f"{message[: position.start()]} (column {position.group(2)})"
    else:
        end = re.search(_SYNTAX_END, message)
        if end is not None:
            line = text.count("\n") + 1
            message = f"{message[: end.start()]} (at the end of the file)"
    return TopologyError(source, f"TOML syntax error: {message}", line=line)


# ==== where keys are written ===================================================

# Strings, as the syntax patterns: only a refused file is read for its lines.
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER = rf"\s*(\[\[|\[)\s*({_DOTTED_KEY})\s*\]"
_KEY_LINE = rf"\s*({_DOTTED_KEY})\s*="


def _key_parts(dotted: str) -> list[str]:
    parts = []
    for raw in re.findall(_KEY_PART, dotted):
        if raw.startswith('"'):
            try:
                raw = str(load_toml(f"k = {raw}")["k"])
            except ValueError:
                raw = raw[1:-1]
        elif raw.startswith("'"):
            raw = raw[1:-1]
        parts.append(raw)
    return parts


class _LineIndex:
    """Best-effort map from key paths to the 1-based line where they are written.

    tomllib gives no positions, so this reads the text statement by statement. Where a
    statement ends is tomllib's own view, not a hand scan: a statement that opens a
    multi-line string or array goes on until its lines parse on their own (a statement of
    a valid document is valid by itself; ''' inside a one-line string opens
    nothing). The first line of each statement is a table header (array-of-tables indices
    resolved, so `[[nodes.services]]` becomes nodes[i].services[j]) or a `key = ` line.
    """

    def __init__(self, text: str) -> None:
        self.keys: dict[_Path, int] = {}
        self.tables: dict[_Path, int] = {}
        counts: dict[_Path, int] = {}
        current: _Path = ()
        lines = text.split("\n")
        start = 0  # index of the first line of the statement being read
        for index in range(len(lines)):
            if index == start:
                line = lines[index].rstrip("\r")
                header = re.match(_HEADER, line)
                key_line = None if header else re.match(_KEY_LINE, line)
                if header is not None:
                    current = self._header(
                        header.group(1) == "[[", header.group(2), counts, index + 1
                    )
                elif key_line is not None:
                    parts = _key_parts(key_line.group(1))
                    for end in range(1, len(parts) + 1):
                        self.keys.setdefault(current + tuple(parts[:end]), index + 1)
            if _is_complete("\n".join(lines[start : index + 1]) + "\n"):
                start = index + 1

    def _header(self, array: bool, dotted: str, counts: dict[_Path, int], number: int) -> _Path:
        parts = _key_parts(dotted)
        path: _Path = ()
        for position, part in enumerate(parts):
            path += (part,)
            last = position == len(parts) - 1
            if last and array:
                counts[path] = counts.get(path, 0) + 1
                self.tables.setdefault(path, number)
                path += (counts[path] - 1,)
            elif path in counts:
                path += (counts[path] - 1,)
        self.tables.setdefault(path, number)
        return path

    def line_of(self, path: _Path) -> int | None:
        """The line of the key itself, else of the nearest enclosing key or table header."""
        while path:
            if path in self.keys:
                return self.keys[path]
            if path in self.tables:
                return self.tables[path]
            path = path[:-1]
        return None


def _is_complete(statement: str) -> bool:
    """Do these lines parse on their own (no multi-line string or array left open)?"""
    try:
        load_toml(statement)
    except ValueError:
        return False
    return True


# ==== validation ===============================================================


class _Checker:
    """Walks the parsed TOML, builds the model, and collects every problem on the way."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text
        self.problems: list[tuple[_Path, str, bool]] = []  # (path, why, the why names the key)
        self.claimed: dict[tuple[_Path, str, object], _Path] = {}
        self.misspelt: set[_Path] = set()  # required keys written under a misspelt name
        self.data: _Table = {}

    def fail(self, path: _Path, why: str, *, names_key: bool = False) -> None:
        self.problems.append((path, why, names_key))

    def error(self) -> TopologyError:
        lines = _LineIndex(self.text)  # only a refused file needs line numbers
        errors = [
            TopologyError(
                self.source,
                why,
                key=_dotted(path),
                line=lines.line_of(path),
                subject=self.subject(path[:-1] if names_key else path),
            )
            for path, why, names_key in self.problems
        ]
        first = errors[0]
        if len(errors) > 1:
            listed = [str(e) for e in errors[:MAX_LISTED_PROBLEMS]]
            if len(errors) > MAX_LISTED_PROBLEMS:
                more = len(errors) - MAX_LISTED_PROBLEMS
                listed.append(f"... and {more} more problem{'' if more == 1 else 's'}")
            first.message = "\n".join(listed)
        return first

    # ---- where a problem is, in words ----------------------------------------

    def _entry(self, path: _Path) -> object:
        value: object = self.data
        for part in path:
            if isinstance(value, dict) and isinstance(part, str):
                value = value.get(part)
            elif isinstance(value, list) and isinstance(part, int) and part < len(value):
                value = value[part]
            else:
                return None
        return value

    def _label(self, path: _Path, what: str) -> str:
        """A node or service by its name ("Mac mini", "FastAPI"), else its id or number."""
        entry = self._entry(path)
        index = path[-1] if isinstance(path[-1], int) else 0
        if isinstance(entry, dict):
            for key in ("name", "id"):
                name = entry.get(key)
                if isinstance(name, str) and _one_line(name):
                    return _one_line(_short(name) if what == "node" else name)
        return f"{what} {index + 1}"

    def subject(self, path: _Path) -> str:
        """ "FastAPI on Mac mini: port", "Mac mini: ip", "defaults.interval", "version"."""
        if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
            node = self._label(path[:2], "node")
            rest = path[2:]
            if len(rest) >= 2 and rest[0] == "services" and isinstance(rest[1], int):
                service = self._label(path[:4], "service")
                where, rest = f"{service} on {node}", rest[2:]
            else:
                where = node
            return f"{where}: {_dotted(rest)}" if rest else where
        return _dotted(path)

    # ---- generic value checks ------------------------------------------------

    def table(self, value: object, path: _Path, allowed: Sequence[str]) -> _Table | None:
        if not isinstance(value, dict):
            self.fail(path, f"must be a table, {_got(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.fail((*path, key), _unknown_key(key, allowed), names_key=True)
                close = _close_key(key, allowed)
                if close is not None and close not in value:
                    self.misspelt.add((*path, close))
        return value

    def tables(self, value: object, path: _Path, header: str) -> list[object] | None:
        if isinstance(value, dict):
            self.fail(path, f"must be an array of tables: write [[{header}]], not [{header}]")
            return None
        if not isinstance(value, list):
            self.fail(path, f"must be an array of tables ([[{header}]]), {_got(value)}")
            return None
        return value

    def present(self, table: _Table, path: _Path, key: str, required: bool) -> object:
        value = table.get(key, _MISSING)
        if value is _MISSING and required and (*path, key) not in self.misspelt:
            self.fail((*path, key), "required key is missing")  # (a misspelling said it)
        return value

    def string(
        self, table: _Table, path: _Path, key: str, *, required: bool = False, empty: bool = False
    ) -> str | None:
        value = self.present(table, path, key, required)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            self.fail((*path, key), _wrong_type("a string", value))
            return None
        if not empty and not value.strip():
            self.fail((*path, key), "must not be empty")
            return None
        return value

    def integer(
        self,
        table: _Table,
        path: _Path,
        key: str,
        *,
        low: int,
        high: int | None = None,
        required: bool = False,
    ) -> int | None:
        value = self.present(table, path, key, required)
        if value is _MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail((*path, key), _wrong_type("an integer", value))
            return None
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f"at least {low}"
            self.fail((*path, key), f"{_number(value)} is out of range ({bounds})")
            return None
        return value

    def boolean(self, table: _Table, path: _Path, key: str) -> bool | None:
        value = self.present(table, path, key, False)
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            self.fail((*path, key), _wrong_type("true or false", value))
            return None
        return value

    def choice(
        self, table: _Table, path: _Path, key: str, choices: Sequence[str], what: str,
        *, required: bool = False,
    ) -> str | None:  # fmt: skip
        value = self.string(table, path, key, required=required, empty=True)
        if value is None:
            return None
        if value not in choices:
            hint = _suggest(value, choices)
            if not hint and key == "os" and value.lower() in _OS_ALIASES:
                hint = f"; did you mean '{_OS_ALIASES[value.lower()]}'?"
            self.fail(
                (*path, key),
                f"unknown {what} {quoted(value)}; expected one of {', '.join(choices)}{hint}",
            )
            return None
        return value

    def duration(self, table: _Table, path: _Path, key: str) -> float | None:
        value = self.present(table, path, key, False)
        if value is _MISSING:
            return None
        try:
            return parse_duration(value)
        except TypeError:
            self.fail((*path, key), _wrong_type('a duration like "10s" or a number', value))
        except ValueError as error:
            self.fail((*path, key), str(error))
        return None

    def positive_number(self, table: _Table, path: _Path, key: str) -> float | None:
        value = self.present(table, path, key, False)
        if value is _MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail((*path, key), _wrong_type("a number", value))
            return None
        number = finite_number(value)
        if number is None or number <= 0:
            self.fail((*path, key), f"must be more than 0, got {_number(value)}")
            return None
        return number

    # ---- the schema ------------------------------------------------------------

    def topology(self, data: _Table) -> Topology | None:
        self.data = data
        root = self.table(data, (), _ROOT_KEYS)
        assert root is not None  # noqa: S101 — tomllib always returns a table
        version = self.integer(root, (), "version", low=0, required=True)
        if version is not None and version != SUPPORTED_VERSION:
            self.fail(
                ("version",),
                f"unsupported version {_number(version)}; this agent reads version "
                f"{SUPPORTED_VERSION}",
            )
        name = self.string(root, (), "name")
        defaults = self.defaults(root.get("defaults", _MISSING))
        nodes = self.nodes(root.get("nodes", _MISSING))
        if defaults is None or nodes is None:
            return None
        return Topology(
            name=name if name is not None else DEFAULT_NAME,
            nodes=nodes,
            defaults=defaults,
            version=SUPPORTED_VERSION,
            source=self.source,
        )

    def defaults(self, value: object) -> Defaults | None:
        if value is _MISSING:
            return Defaults()
        path: _Path = ("defaults",)
        table = self.table(value, path, _DEFAULTS_KEYS)
        if table is None:
            return None
        base = Defaults()
        interval = self.duration(table, path, "interval")
        timeout = self.duration(table, path, "timeout")
        failure = self.integer(table, path, "failure_threshold", low=1)
        success = self.integer(table, path, "success_threshold", low=1)
        latency = self.positive_number(table, path, "latency_warn_ms")
        access = self.choice(table, path, "access", _ACCESS_VALUES, "access")
        return Defaults(
            interval_s=interval if interval is not None else base.interval_s,
            timeout_s=timeout if timeout is not None else base.timeout_s,
            failure_threshold=failure if failure is not None else base.failure_threshold,
            success_threshold=success if success is not None else base.success_threshold,
            latency_warn_ms=latency if latency is not None else base.latency_warn_ms,
            access=Access(access) if access is not None else None,
        )

    def nodes(self, value: object) -> tuple[Node, ...] | None:
        path: _Path = ("nodes",)
        if value is _MISSING:
            self.fail(path, "required: the file lists no nodes; add a [[nodes]] table per machine")
            return None
        items = self.tables(value, path, "nodes")
        if items is None:
            return None
        if not items:
            self.fail(path, "must list at least one node")
            return None
        nodes = [self.node(item, (*path, i)) for i, item in enumerate(items)]
        if any(n is None for n in nodes):
            return None
        parsed = tuple(n for n in nodes if n is not None)
        self.known_consumers(parsed)
        return parsed

    def known_consumers(self, nodes: tuple[Node, ...]) -> None:
        """Each service's `consumers` names other nodes of this file."""
        ids = [n.id for n in nodes]
        for i, node in enumerate(nodes):
            for j, service in enumerate(node.services):
                for k, consumer in enumerate(service.consumers or ()):
                    key: _Path = ("nodes", i, "services", j, "consumers", k)
                    shown = quoted(consumer)
                    if consumer == node.id:
                        self.fail(
                            key,
                            f"{shown} is the service's own node: list the other nodes that "
                            "use it (its own node always reaches it)",
                        )
                    elif consumer not in ids:
                        self.fail(
                            key,
                            f"no node has id {shown}{_suggest(consumer, ids)} "
                            f"(the node ids are {', '.join(ids)})",
                        )

    def claim(self, scope: _Path, what: str, value: object, path: _Path) -> None:
        """Refuse a value already used by another entry in the same scope."""
        earlier = self.claimed.setdefault((scope, what, value), path)
        if earlier != path:
            shown = value if isinstance(value, int) else quoted(str(value))
            also = self.subject(earlier)
            if also == self.subject(path):  # two nodes named alike: their places tell apart
                also = _dotted(earlier)
            self.fail(path, f"duplicate {what} {shown} (also at {also})")

    def node(self, value: object, path: _Path) -> Node | None:
        table = self.table(value, path, _NODE_KEYS)
        if table is None:
            return None
        node_id = self.string(table, path, "id", required=True)
        if node_id is not None and not NODE_ID_PATTERN.fullmatch(node_id):
            self.fail(
                (*path, "id"),
                f"{quoted(node_id)} is not a short slug: use 1 to 32 of "
                "a-z, 0-9, '-' and '_', starting with a letter or digit",
            )
            node_id = None
        if node_id is not None:
            self.claim((), "node id", node_id, (*path, "id"))
        name = self.string(table, path, "name")
        # Tailscale's HostName as it is: macOS names machines "Borja’s MacBook Air", and
        # several phones can all be "localhost" (their IPs, unique, tell them apart).
        hostname = self.string(table, path, "hostname", required=True)
        if hostname is not None and re.search(r"[\x00-\x1f\x7f]", hostname):
            self.fail((*path, "hostname"), "must not contain control characters")
            hostname = None
        ip = self.ip(table, path)
        if ip is not None:
            self.claim((), "node IP", ip, (*path, "ip"))
        os = self.choice(table, path, "os", OS_VALUES, "os")
        role = self.string(table, path, "role", empty=True)
        always_on = self.boolean(table, path, "always_on")
        services = self.services(table.get("services", _MISSING), (*path, "services"))
        if node_id is None or hostname is None or ip is None or services is None:
            return None
        return Node(
            id=node_id,
            name=name if name is not None else node_id,
            hostname=hostname,
            ip=ip,
            os=os if os is not None else "linux",
            role=role if role is not None else "",
            always_on=always_on if always_on is not None else True,
            services=services,
        )

    def ip(self, table: _Table, path: _Path) -> str | None:
        text = self.string(table, path, "ip", required=True)
        if text is None:
            return None
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            self.fail(
                (*path, "ip"),
                f"{quoted(text)} is not an IPv4 or IPv6 address",
            )
            return None

    def services(self, value: object, path: _Path) -> tuple[Service, ...] | None:
        if value is _MISSING:
            return ()
        items = self.tables(value, path, "nodes.services")
        if items is None:
            return None
        services = [self.service(item, (*path, i), path) for i, item in enumerate(items)]
        if any(s is None for s in services):
            return None
        return tuple(s for s in services if s is not None)

    def service(self, value: object, path: _Path, scope: _Path) -> Service | None:
        table = self.table(value, path, _SERVICE_KEYS)
        if table is None:
            return None
        name = self.string(table, path, "name", required=True)
        if name is not None:
            self.claim(scope, "service name", name, (*path, "name"))
        port = self.integer(table, path, "port", low=1, high=65535, required=True)
        if port is not None:
            self.claim(scope, "port", port, (*path, "port"))
        check_text = self.choice(table, path, "check", _CHECK_VALUES, "check kind", required=True)
        check = CheckKind(check_text) if check_text is not None else None
        service_path = self.service_path(table, path, check)
        expect_status = self.expect_status(table, path, check)
        expect_body = self.string(table, path, "expect_body")
        if expect_body is not None and check is not None and check is not CheckKind.HTTP:
            self.fail((*path, "expect_body"), "applies only to http checks")
        impact = self.choice(table, path, "impact", _IMPACT_VALUES, "impact")
        access = self.choice(table, path, "access", _ACCESS_VALUES, "access")
        open_ = self.boolean(table, path, "open")
        consumers = self.consumers(table, path)
        if name is None or port is None or check is None:
            return None
        return Service(
            name=name,
            port=port,
            check=check,
            path=service_path if service_path is not None else "/",
            expect_status=expect_status,
            expect_body=expect_body,
            impact=Impact(impact) if impact is not None else Impact.DEGRADED,
            access=Access(access) if access is not None else None,
            open=open_ if open_ is not None else False,
            consumers=consumers,
        )

    def consumers(self, table: _Table, path: _Path) -> tuple[str, ...] | None:
        """`consumers = ["laptop", "desktop"]`: node ids, each once (checked against the
        nodes once all are read, in known_consumers)."""
        value = self.present(table, path, "consumers", False)
        key = (*path, "consumers")
        if value is _MISSING:
            return None
        if not isinstance(value, list):
            self.fail(key, _wrong_type('an array of node ids like ["laptop", "desktop"]', value))
            return None
        ids: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail((*key, i), _wrong_type("a node id (a string)", item))
            elif item in ids:
                self.fail((*key, i), f"{quoted(item)} is listed twice")
            else:
                ids.append(item)
        return tuple(ids)

    def service_path(self, table: _Table, path: _Path, check: CheckKind | None) -> str | None:
        value = self.string(table, path, "path", empty=True)
        if value is None:
            return None
        key = (*path, "path")
        if check is not None and check not in _PATH_CHECKS:
            self.fail(key, "applies only to http and websocket checks")
        elif not value.startswith("/") or value.startswith("//"):
            self.fail(key, f"must start with a single '/', {_got(value)}")
        elif re.search(r"[\s\x00-\x1f\x7f]", value):
            self.fail(key, "must not contain spaces or control characters (percent-encode them)")
        else:
            return value
        return None

    def expect_status(self, table: _Table, path: _Path, check: CheckKind | None) -> tuple[int, ...]:
        value = self.present(table, path, "expect_status", False)
        key = (*path, "expect_status")
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            self.fail(key, _wrong_type("an array of status codes like [200]", value))
            return ()
        if check is not None and check is not CheckKind.HTTP:
            self.fail(key, "applies only to http checks")
        codes: list[int] = []
        for i, code in enumerate(value):
            if isinstance(code, bool) or not isinstance(code, int):
                self.fail((*key, i), _wrong_type("an integer", code))
            elif not 100 <= code <= 599:
                self.fail((*key, i), f"{code} is not an HTTP status code (100..599)")
            else:
                codes.append(code)
        return tuple(codes)
