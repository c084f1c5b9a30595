"""Stream schemas: which streams exist and the type of each field.

Loaded from ``rules/streams.yaml`` (docs/design.md §3). A field type is one of
:data:`~fraudrules.columns.types.FIELD_TYPES`; ``enum`` fields also carry their allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..columns.types import FIELD_TYPES, LogicalType
from ..errors import RuleError
from .source import Node, load_yaml_file

REQUIRED_FIELDS = {"id": LogicalType.STRING, "ts": LogicalType.TIMESTAMP}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: LogicalType
    values: tuple[str, ...] = ()  # allowed values of an enum


@dataclass(frozen=True)
class StreamSpec:
    name: str
    fields: dict[str, FieldSpec]
    description: str = ""
    parties: tuple[str, ...] = ()  # fields that name who (accounts, numbers): in every alert's evidence

    def field_names(self) -> list[str]:
        return list(self.fields)


@dataclass
class Schema:
    streams: dict[str, StreamSpec] = field(default_factory=dict)
    path: str = ""

    def stream(self, name: str) -> StreamSpec:
        return self.streams[name]


def _field_spec(name: str, node: Node) -> FieldSpec:
    value = node.value
    if isinstance(value, str):
        ftype, values = value, ()
    elif isinstance(value, dict) and "type" in value:
        ftype = value["type"].value
        raw_values = value.get("values")
        values = tuple(str(v.value) for v in raw_values.value) if raw_values is not None else ()
    else:
        raise RuleError(f"field {name!r}: expected a type name or {{type: ..., values: [...]}}", node.loc)
    if ftype not in FIELD_TYPES:
        raise RuleError(f"field {name!r}: unknown type {ftype!r} (one of {', '.join(FIELD_TYPES)})", node.loc)
    if ftype == LogicalType.ENUM and not values:
        raise RuleError(f"enum field {name!r} needs a list of values", node.loc)
    return FieldSpec(name, LogicalType(ftype), values)


def _parties(stream: str, snode: Node, fields: dict[str, FieldSpec]) -> tuple[str, ...]:
    """``parties: [payer_account, payee_account]``: declared fields of the stream."""
    node = snode.get("parties")
    if node is None:
        return ()
    if not isinstance(node.value, list):
        raise RuleError(f"stream {stream!r}: 'parties' must be a list of its fields", node.loc)
    out = []
    for item in node.value:
        if not isinstance(item.value, str) or item.value not in fields:
            raise RuleError(f"stream {stream!r}: party {item.value!r} is not one of its fields", item.loc)
        out.append(item.value)
    return tuple(dict.fromkeys(out))


def load_schema(path: Path | str) -> Schema:
    """Load and validate a streams file."""
    root = load_yaml_file(path)
    streams_node = root.get("streams")
    if streams_node is None or not isinstance(streams_node.value, dict):
        raise RuleError("expected a top-level 'streams:' mapping", root.loc)
    schema = Schema(path=str(path))
    for sname, snode in streams_node.value.items():
        if not sname.isidentifier() or sname.startswith("_"):
            raise RuleError(f"stream name {sname!r} must be an identifier", streams_node.key_locs[sname])
        fields_node = snode.get("fields")
        if fields_node is None or not isinstance(fields_node.value, dict):
            raise RuleError(f"stream {sname!r} needs a 'fields:' mapping", snode.loc)
        fields: dict[str, FieldSpec] = {}
        for fname, fnode in fields_node.value.items():
            if not fname.isidentifier() or fname.startswith("_"):
                raise RuleError(f"field name {fname!r} must be an identifier", fields_node.key_locs[fname])
            fields[fname] = _field_spec(fname, fnode)
        for req, rtype in REQUIRED_FIELDS.items():
            if req not in fields or fields[req].type != rtype:
                raise RuleError(f"stream {sname!r} must declare field {req!r} of type {rtype}", fields_node.loc)
        desc = snode.get("description")
        schema.streams[sname] = StreamSpec(sname, fields, desc.value if desc else "", _parties(sname, snode, fields))
    return schema
