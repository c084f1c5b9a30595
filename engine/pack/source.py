"""Safe YAML loading that remembers where every value came from.

Rule files are untrusted: they are read with PyYAML's *safe* composer only
(no tags, no object construction), bounded in size and nesting depth, and
every mapping key and scalar keeps its line and column so that errors can
point at them.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import RuleError, SourceLocation
from .yaml_errors import plain_message

MAX_FILE_BYTES = 2_000_000
MAX_DEPTH = 32
MAX_NODES = 200_000


class _NoKeys(Mapping):
    """The key locations of a scalar or a sequence: none. One shared, immutable and picklable (a plan holds
    its pack's nodes, and Spark pickles the plan to its executors), unlike a mappingproxy."""

    __slots__ = ()

    def __getitem__(self, key: str) -> SourceLocation:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_NO_KEYS: Mapping[str, SourceLocation] = _NoKeys()


class Node:
    """A YAML value with its location; mappings and sequences hold Nodes.

    A plain slotted class: a pack holds tens of thousands (mostly its inline tests), and a dataclass
    with a ``key_locs`` dict per node was about a quarter of loading one."""

    __slots__ = ("value", "loc", "style", "raw", "key_locs")

    def __init__(self, value: Any, loc: SourceLocation, style: str | None = None, raw: str = "",
                 key_locs: Mapping[str, SourceLocation] = _NO_KEYS):
        self.value = value
        self.loc = loc
        self.style = style  # scalar style: None (plain), "'", '"', "|", ">"
        self.raw = raw  # the scalar's source text, to locate offsets inside it
        self.key_locs = key_locs  # mappings: where each key is; one shared empty view for the rest

    def __repr__(self) -> str:
        return f"Node({self.value!r}, {self.loc!r})"

    def _fields(self) -> tuple:
        return (self.value, self.loc, self.style, self.raw, dict(self.key_locs))

    def __eq__(self, other: object) -> bool:  # by value, as the dataclass it was
        return self._fields() == other._fields() if isinstance(other, Node) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def get(self, key: str, default: Any = None) -> Any:
        if isinstance(self.value, dict):
            return self.value.get(key, default)
        return default

    def plain(self) -> Any:
        """The value with all location information stripped."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value

    def offset_location(self, offset: int) -> SourceLocation:
        """Location of character ``offset`` of this scalar's *value*.

        Folding and quoting only remove whitespace and quote characters, so
        walking the raw text and the value side by side finds the position.
        """
        if not isinstance(self.value, str) or not self.raw:
            return self.loc
        value, raw = self.value, self.raw
        line, col = self.loc.line, self.loc.col
        ri = 0
        for vi in range(min(offset, len(value)) + 1):
            target = value[vi] if vi < len(value) else None
            while ri < len(raw):
                ch = raw[ri]
                if target is not None and ch == target:
                    break
                if ch == "\n":
                    line, col = line + 1, 1
                else:
                    col += 1
                ri += 1
            if vi == offset:
                return SourceLocation(self.loc.path, line, col)
            if ri < len(raw):
                if raw[ri] == "\n":
                    line, col = line + 1, 1
                else:
                    col += 1
                ri += 1
        return SourceLocation(self.loc.path, line, col)


def _loc(path: str, mark: yaml.Mark) -> SourceLocation:
    return SourceLocation(path, mark.line + 1, mark.column + 1)


def _convert(node: yaml.Node, path: str, text: str, depth: int, counter: list[int],
             skip: frozenset[str] = frozenset()) -> Node:
    """``skip``: keys of this mapping whose values are left out, neither converted nor counted."""
    counter[0] += 1
    if depth > MAX_DEPTH:
        raise RuleError(f"nesting deeper than {MAX_DEPTH} levels", _loc(path, node.start_mark))
    if counter[0] > MAX_NODES:
        raise RuleError(f"more than {MAX_NODES} YAML values", _loc(path, node.start_mark))
    loc = _loc(path, node.start_mark)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _SAFE_COLLECTION_TAGS:
        # !!set, !!omap, !!python/... or a custom tag on a mapping or list: refused like scalar tags
        raise RuleError(f"YAML tag {node.tag} is not allowed", loc)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        key_locs: dict[str, SourceLocation] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise RuleError("mapping keys must be plain strings", _loc(path, key_node.start_mark))
            key = key_node.value  # what construct_scalar gives a scalar key, whatever its tag
            if key in key_locs:
                raise RuleError(f"duplicate key {key!r}", _loc(path, key_node.start_mark))
            key_locs[key] = _loc(path, key_node.start_mark)
            if key in skip:
                continue
            out[key] = _convert(value_node, path, text, depth + 1, counter)
        return Node(out, loc, key_locs=key_locs)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(v, path, text, depth + 1, counter) for v in node.value], loc)
    if node.tag not in _SAFE_TAGS:
        raise RuleError(f"YAML tag {node.tag} is not allowed", loc)
    # a string is its text as libyaml gives it (construct_yaml_str); other tags take their safe constructor,
    # called directly: construct_object would keep every node it ever built in the shared loader
    value = node.value if node.tag == _STR_TAG else _SCALARS.yaml_constructors[node.tag](_SCALARS, node)
    raw = text[node.start_mark.index : node.end_mark.index]
    style = node.style
    if isinstance(value, str) and style in ("'", '"'):
        raw = raw[1:]
        loc = SourceLocation(path, loc.line, loc.col + 1)
    elif isinstance(value, str) and style in ("|", ">"):
        # block scalars start after the indicator line
        nl = raw.find("\n")
        raw = raw[nl + 1 :] if nl >= 0 else raw
        loc = SourceLocation(path, loc.line + 1, 1)
    return Node(value, loc, style=style, raw=raw)


_STR_TAG = "tag:yaml.org,2002:str"
_SAFE_TAGS = {
    _STR_TAG,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_SAFE_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_SCALARS = yaml.SafeLoader("")
# libyaml's safe composer when available: same nodes and marks, ten times faster
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_text(text: str, path: str, skip: frozenset[str] = frozenset()) -> Node:
    """Parse one YAML document from ``text`` into located Nodes. ``skip``: keys of the top-level mapping whose
    values are only parsed as YAML, not converted (a rule's inline ``tests:``, most of a pack's nodes, when the
    caller evaluates rules and never runs their tests)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise RuleError(f"file larger than {MAX_FILE_BYTES} bytes", SourceLocation(path))
    try:
        composed = yaml.compose(text, Loader=_SAFE_LOADER)
    except yaml.MarkedYAMLError as exc:
        message, mark = plain_message(exc, text)
        where = _loc(path, mark) if mark else SourceLocation(path)
        raise RuleError(message, where) from None
    except yaml.YAMLError as exc:  # pragma: no cover - composer errors are marked
        raise RuleError(f"YAML syntax: {exc}", SourceLocation(path)) from None
    if composed is None:
        raise RuleError("file is empty", SourceLocation(path, 1, 1))
    return _convert(composed, path, text, 0, [0], skip)


def load_yaml_file(path: Path | str, skip: frozenset[str] = frozenset()) -> Node:
    """Read and parse a YAML file; unreadable or non-UTF-8 files are RuleErrors. ``skip``: as load_yaml_text."""
    p = Path(path)
    try:
        if not stat.S_ISREG(p.stat().st_mode):  # a FIFO would block the load forever
            raise RuleError("not a regular file", SourceLocation(str(p)))
        with p.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise RuleError(f"cannot read: {exc.strerror}", SourceLocation(str(p))) from None
    if len(data) > MAX_FILE_BYTES:
        raise RuleError(f"file larger than {MAX_FILE_BYTES} bytes", SourceLocation(str(p)))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RuleError("file is not valid UTF-8", SourceLocation(str(p), line, 1)) from None
    return load_yaml_text(text, str(p), skip)
