"""An Event as a row of the ``events`` table and back, derived from its field list.

The fields without a default (EventFields) are the table's columns, named as in
RECORD_FIELD_NAMES where the column differs; the others are stored as a JSON object in
``extra``, only those that differ from their default. A new Event field with a default
is stored and read back with no edit here; so is one whose type is itself a dataclass of
such fields (the Evidence), stored as a nested object of its values unlike their defaults.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import typing
from typing import Any, TypeVar

from agent.core.events import RECORD_FIELD_NAMES, Event, EventFields, EventRecord

__all__ = ["EVENT_COLUMNS", "EVENT_INSERT", "EVENT_SELECT", "event_row", "record_of"]


def _is_column(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


_FIELD_TYPES = typing.get_type_hints(EventFields)
_COLUMN_FIELDS = tuple(f for f in dataclasses.fields(EventFields) if _is_column(f))
_EXTRA_FIELDS = tuple(f for f in dataclasses.fields(EventFields) if not _is_column(f))
EVENT_COLUMNS = tuple(RECORD_FIELD_NAMES.get(f.name, f.name) for f in _COLUMN_FIELDS)
EVENT_SELECT = f"SELECT id, {', '.join(EVENT_COLUMNS)}, extra FROM events"  # noqa: S608 — column names from the dataclass, values bound
EVENT_INSERT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}, extra) "  # noqa: S608 — column names from the dataclass, values bound
    f"VALUES ({', '.join('?' * (len(EVENT_COLUMNS) + 1))})"
)


def _column_value(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return str(value)  # an enum member's text
    return value


def _stored(value: object) -> object:
    """A field's value as JSON holds it: a dataclass as its fields unlike their defaults."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _stored(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) != f.default
        }
    return list(value) if isinstance(value, tuple) else value


def event_row(event: Event) -> tuple[object, ...]:
    """The values for EVENT_INSERT."""
    extra: dict[str, object] = {}
    for f in _EXTRA_FIELDS:
        value = getattr(event, f.name)
        if value != f.default:
            extra[f.name] = _stored(value)
    return (
        *(_column_value(getattr(event, f.name)) for f in _COLUMN_FIELDS),
        json.dumps(extra, ensure_ascii=False, default=str) if extra else None,
    )


def _read_value(hint: object, value: object, default: object) -> object:
    """`value` read as a field of type `hint`, `default` when it is not one (a newer
    agent's row, or one edited by hand)."""
    options = typing.get_args(hint)
    if type(None) in options:
        if value is None:
            return None
        (hint,) = (o for o in options if o is not type(None))
    if isinstance(hint, TypeVar) or hint is str:  # the kind and the reason stay text
        return value if isinstance(value, str) else default
    if hint is float:
        return float(value) if isinstance(value, int | float) else default
    if hint is bool:
        return bool(value) if isinstance(value, int) else default
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else default
    if typing.get_origin(hint) is tuple:
        return tuple(str(v) for v in value) if isinstance(value, list) else default
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _read_dataclass(hint, value) if isinstance(value, dict) else default
    raise TypeError(f"the history cannot store an event field of type {hint}")


def _read_dataclass(cls: type[Any], values: dict[str, Any]) -> object:
    hints = typing.get_type_hints(cls)
    return cls(
        **{
            f.name: _read_value(hints[f.name], values.get(f.name, f.default), f.default)
            for f in dataclasses.fields(cls)
        }
    )


def record_of(row: tuple[Any, ...]) -> EventRecord:
    """The record of one EVENT_SELECT row."""
    rid, *columns, extra_text = row
    extra: dict[str, Any] = {}
    if extra_text:
        with contextlib.suppress(ValueError):
            loaded = json.loads(extra_text)
            if isinstance(loaded, dict):
                extra = loaded
    values: dict[str, Any] = {}
    for f, value in zip(_COLUMN_FIELDS, columns, strict=True):
        values[f.name] = _read_value(_FIELD_TYPES[f.name], value, value)
    for f in _EXTRA_FIELDS:
        values[f.name] = _read_value(_FIELD_TYPES[f.name], extra.get(f.name), f.default)
    return EventRecord(id=int(rid), **values)
