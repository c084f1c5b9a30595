"""Mapping files: read a foreign record format into a stream (docs/design.md §3).

A mapping names the target stream and gives each target field as an
expression over the source columns, in the rule expression language::

    stream: payment
    region: CN                      # default phone region of this source
    source:
      format: csv                   # else from the file name
      delimiter: ";"                # CSV only; a comma by default (quote it in YAML: "|", "\t")
      encoding: gbk                 # CSV only; UTF-8 by default (Excel on a Chinese Windows writes GBK)
      rename: {交易时间: at, "Transaction ID": txn}   # plain names for columns whose own are not
      types: {step: int, amount: float}   # source column types (default string)
    fields:
      id: concat("ps-", row)
      ts: timestamp("2026-03-01T00:00:00+08:00") + step * 1h
      amount: amount
      currency: '"XXX"'             # a text constant needs quotes inside the YAML
    where: type != "DEBIT"          # optional: rows to read (others are counted as filtered)

Besides the source columns an expression may use ``row`` (the 1-based number
of the data row in its file) and ``line`` (its physical line). Expressions
are parsed and type-checked when the mapping is loaded, so every mistake is a
RuleError at file:line:col; nothing in a mapping can run code. At read time
each expression is evaluated over whole columns, and the results are
normalised like a native file's values (text is parsed to the field's type).

A source value that does not fit its declared type rejects the row; so does
a target value that does not fit its field, or a null ``id`` or ``ts`` (the
reason names the field and the source values it came from).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..columns.types import FIELD_TYPES, NUMERIC_TYPES, STRING_TYPES, LogicalType
from ..columns.vec import Vec
from ..errors import InputError, RuleError, RuleErrors, SourceLocation
from ..lang.expr import Cond, ExprSyntaxError, Field, Literal, parse_expr
from ..lang.functions import FUNCTIONS, is_numeric, is_stringy
from ..pack.checker import Checker, Scope
from ..pack.model import ExprSource
from ..pack.source import Node, load_yaml_file
from ..pack.streams import REQUIRED_FIELDS, FieldSpec, Schema, StreamSpec
from ..runtime.evaluate import ColumnsEnv, Evaluator
from .convert import Normalised, Problems, convert_column, json_kind, show_value, typed_text
from .raw import RawChunk, text_encoding
from .tables import FORMATS

SOURCE_TYPES = tuple(t for t in FIELD_TYPES if t != LogicalType.ENUM)  # a source column's declared type
RESERVED = {"row": LogicalType.FLOAT, "line": LogicalType.FLOAT}
_TOP_KEYS = {"stream", "region", "source", "fields", "where", "description"}
_SOURCE_KEYS = {"format", "types", "delimiter", "encoding", "rename"}
# a CSV source's field delimiter: one ASCII punctuation character or a tab, never the quote (a switch's CDR
# export is often "|"- or ";"-separated)
DELIMITERS = frozenset("\t!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


@dataclass
class Mapping:
    path: str
    stream: str
    fields: dict[str, ExprSource]  # target field -> expression, in the file's order
    region: str | None = None
    format: str | None = None
    delimiter: str | None = None  # a CSV source's field delimiter (None: a comma)
    encoding: str | None = None  # a CSV source's text encoding (None: UTF-8)
    renamed: dict[str, str] = field(default_factory=dict)  # a plain name expressions use -> the file's column
    types: dict[str, LogicalType] = field(default_factory=dict)  # declared source column types
    where: ExprSource | None = None
    columns: tuple[str, ...] = ()  # source columns used, in order of first use
    uses: dict[str, tuple[str, ...]] = field(default_factory=dict)  # target field -> source columns it uses
    description: str = ""
    first_use: dict[str, SourceLocation] = field(default_factory=dict)  # source column -> where it is first read

    def source_type(self, column: str) -> LogicalType:
        return self.types.get(column, LogicalType.STRING)

    def source_name(self, column: str) -> str:
        """The file's name of a source column the expressions use (``rename`` gives one a plain name)."""
        return self.renamed.get(column, column)

    def read_columns(self) -> list[str]:
        """The file's columns the mapping reads, in order of first use."""
        return list(dict.fromkeys(self.source_name(c) for c in self.columns))

    def json_kinds(self) -> dict[str, str]:
        """By the file's column name: how a JSON value of each column is read (a text column takes any)."""
        return {self.source_name(c): json_kind(self.source_type(c), self.source_type(c) == LogicalType.STRING)
                for c in self.columns}

    def check_columns(self, header: list[str] | None, input_name: str) -> None:
        """Every source column used must be in the file (JSON Lines has no header: missing keys are null)."""
        if header is None:
            return
        have = set(header)
        for col in self.columns:
            name = self.source_name(col)
            if name not in have:
                users = [f for f, cols in self.uses.items() if col in cols] or ["where"]
                close = difflib.get_close_matches(name, header, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                other = [d for d in ";|\t" if len(header) == 1 and d in header[0]]
                if other:  # one column that holds another separator than the one read
                    quoted = '"\\t"' if other[0] == "\t" else f'"{other[0]}"'
                    hint = f"; the header looks separated by {quoted}: source: {{delimiter: {quoted}}}"
                shown = repr(name) if name == col else f"{name!r} (renamed {col})"
                raise InputError(
                    f"{self.first_use.get(col, self.path)}: source column {shown} (used by {', '.join(users)}) is "
                    f"not in {input_name} (columns: {', '.join(header) or 'none'}){hint}; a text constant needs "
                    f"quotes inside the YAML, e.g. '\"{col}\"'")

    def apply(self, chunk: RawChunk, target: StreamSpec, region: str) -> Normalised:
        """Evaluate the field expressions over one chunk and type the results."""
        n = chunk.n
        problems = Problems(n)
        if "" in chunk.pre:
            problems.add(*chunk.pre[""])
        env_cols: dict[str, Vec] = {}
        for col in self.columns:
            ctype = self.source_type(col)
            name = self.source_name(col)  # the reasons name the file's column
            if name in chunk.pre:
                problems.add(*chunk.pre[name])
            conv = convert_column(chunk.columns.get(name), FieldSpec(name, ctype), region, n,
                                  lenient=ctype == LogicalType.STRING)
            problems.add(conv.bad, conv.reason)
            env_cols[col] = conv.vec
        env_cols["row"] = Vec.of(chunk.row.astype(np.float64))
        env_cols["line"] = Vec.of(chunk.line.astype(np.float64))
        env = ColumnsEnv(env_cols, n)
        ev = Evaluator()
        source_bad = problems.any()
        passing = ev.truth(self.where.ast, env) if self.where is not None else np.ones(n, dtype=bool)
        filtered = ~passing & ~source_bad
        live = passing & ~source_bad
        columns: dict[str, Vec] = {}
        for name, fspec in target.fields.items():
            src = self.fields.get(name)
            if src is None:
                columns[name] = Vec.nulls(fspec.type, n)
                continue
            vec = ev.compute(src.ast, env)
            conv = convert_column(_to_arrow(vec, fspec.type), fspec, region, n)
            problems.add(conv.bad & live, conv.reason)
            if name in REQUIRED_FIELDS:
                problems.add(conv.vec.null & ~conv.bad & live, self._null_reason(name, src, chunk, env_cols))
            columns[name] = conv.vec
        return Normalised(columns, problems, filtered)

    def _null_reason(self, name: str, src: ExprSource, chunk: RawChunk, env_cols: dict[str, Vec]):
        text = " ".join(src.text.split())
        if len(text) > 60:
            text = text[:57] + "..."
        cols = self.uses.get(name, ())[:3]

        def reason(i: int) -> str:
            shown = []
            for c in cols:
                arr = chunk.columns.get(self.source_name(c))
                value = None if arr is None or not arr[i].is_valid else typed_text(arr, i)
                shown.append(f"{self.source_name(c)}={show_value(value) if value is not None else 'null'}")
            where = f" ({', '.join(shown)})" if shown else ""
            return f"{name}: {text} is null{where}"

        return reason


def _renames(node: Node, errors: list[RuleError]) -> dict[str, str]:
    """``rename: {file column: plain name}`` -> plain name: file column. A column named in another script
    (交易时间) or with spaces (``Transaction ID``) cannot be a name in an expression; renamed, it can."""
    if not isinstance(node.value, dict):
        errors.append(RuleError("source rename must be a mapping: the file's column: a plain name", node.loc))
        return {}
    renamed: dict[str, str] = {}
    for column, target in node.value.items():
        name = target.value
        parsed = None
        if isinstance(name, str):
            try:
                parsed = parse_expr(name)
            except ExprSyntaxError:
                pass
        if not (isinstance(parsed, Field) and parsed.alias is None and parsed.name == name) or name in RESERVED:
            errors.append(RuleError(f"rename {column!r} to a plain name (letters, digits and _, a letter first; "
                                    f"not row or line), not {name!r}", target.loc))
        elif name in renamed:
            errors.append(RuleError(f"two columns are renamed {name!r}: {renamed[name]!r} and {column!r}",
                                    target.loc))
        else:
            renamed[name] = str(column)
    return renamed


def _to_arrow(vec: Vec, target_type: LogicalType) -> pa.Array:
    """An evaluated column as Arrow, for the same conversion a native file gets."""
    values, null = vec.values, vec.null
    mask = null if null.any() else None
    if values.dtype == np.float64 and target_type in STRING_TYPES:
        vec = FUNCTIONS["string"].apply([vec], None)  # 12.0 -> "12": ids and codes made from numbers
        values = vec.values
    if values.dtype == object:
        try:
            return pa.array(values, pa.string(), mask=mask)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # pragma: no cover - the evaluator yields str
            return pa.array([str(v) for v in values], pa.string(), mask=mask)
    if values.dtype == np.int64:
        return pa.array(values, pa.int64(), mask=mask).cast(pa.timestamp("ns", "UTC"))
    if values.dtype == bool:
        return pa.array(values, pa.bool_(), mask=mask)
    return pa.array(values.astype(np.float64), pa.float64(), mask=mask)


def _fits(target: LogicalType, t: LogicalType) -> bool:
    """Whether an expression of type ``t`` can be converted to a field of type ``target``."""
    if t == LogicalType.NULL:
        return True
    if target == LogicalType.TIMESTAMP:
        return t == LogicalType.TIMESTAMP or is_stringy(t)
    if target in NUMERIC_TYPES:
        return is_numeric(t) or is_stringy(t)
    if target == LogicalType.BOOL:
        return t == LogicalType.BOOL or is_stringy(t)
    return is_stringy(t) or is_numeric(t)


def _result_literals(node):
    """String literals an expression can evaluate to (for enum checks)."""
    if isinstance(node, Literal) and node.kind == "string":
        yield node
    elif isinstance(node, Cond):
        yield from _result_literals(node.then)
        yield from _result_literals(node.other)


def _expression(node: Node, what: str, errors: list[RuleError]) -> ExprSource | None:
    value = node.value
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        errors.append(RuleError(f"{what}: expected an expression", node.loc))
        return None
    try:
        ast = parse_expr(value)
    except ExprSyntaxError as exc:
        errors.append(RuleError(f"{what}: {exc.message}", node.offset_location(exc.offset)))
        return None
    return ExprSource(value, ast, node)


def _loc(node: Node, key: str) -> SourceLocation:
    return node.key_locs.get(key, node.loc)


def _known_regions() -> set[str]:
    """The region codes phonenumbers knows; imported here, not with the module: score imports this module
    for every run, and only a mapping file with a region asks."""
    import phonenumbers

    return phonenumbers.SUPPORTED_REGIONS


def load_mapping(path: Path | str, schema: Schema) -> Mapping:
    """Load, parse and type-check a mapping file; RuleError(s) at file:line:col on any problem."""
    root = load_yaml_file(path)
    errors: list[RuleError] = []
    if not isinstance(root.value, dict):
        raise RuleError("a mapping file is a YAML mapping with stream: and fields:", root.loc)
    for key in root.value:
        if key not in _TOP_KEYS:
            errors.append(RuleError(f"unknown key {key!r} (allowed: {', '.join(sorted(_TOP_KEYS))})",
                                    _loc(root, key)))

    stream_node = root.get("stream")
    target: StreamSpec | None = None
    if stream_node is None:
        errors.append(RuleError("missing required key 'stream'", root.loc))
    elif stream_node.value not in schema.streams:
        errors.append(RuleError(f"unknown stream {stream_node.value!r} (streams: {', '.join(schema.streams)})",
                                stream_node.loc))
    else:
        target = schema.streams[stream_node.value]

    region = None
    region_node = root.get("region")
    if region_node is not None:
        region = str(region_node.value).upper() if isinstance(region_node.value, str) else None
        if region not in _known_regions():
            errors.append(RuleError(f"region {region_node.value!r} is not a region code phonenumbers knows "
                                    f"(e.g. CN, GB, US)", region_node.loc))

    fmt = delimiter = encoding = None
    renamed: dict[str, str] = {}
    types: dict[str, str] = {}
    source_node = root.get("source")
    if source_node is not None:
        if not isinstance(source_node.value, dict):
            errors.append(RuleError("source must be a mapping (format:, types:)", source_node.loc))
        else:
            for key in source_node.value:
                if key not in _SOURCE_KEYS:
                    errors.append(RuleError(f"unknown key {key!r} in source (allowed: format, types, delimiter, "
                                            f"encoding)",
                                            _loc(source_node, key)))
            fnode = source_node.get("format")
            if fnode is not None:
                if fnode.value not in FORMATS:
                    errors.append(RuleError(f"source format {fnode.value!r} is not one of {', '.join(FORMATS)}",
                                            fnode.loc))
                else:
                    fmt = fnode.value
            dnode = source_node.get("delimiter")
            if dnode is not None:
                if not (isinstance(dnode.value, str) and dnode.value in DELIMITERS):
                    errors.append(RuleError(f"source delimiter must be one punctuation character or a tab, quoted "
                                            f"(e.g. \";\", \"|\", \"\\t\"), not {dnode.value!r}", dnode.loc))
                elif fmt not in (None, "csv"):
                    errors.append(RuleError(f"a delimiter is for CSV sources, and this one is {fmt}", dnode.loc))
                else:
                    delimiter = dnode.value
            enode = source_node.get("encoding")
            if enode is not None:
                name = text_encoding(enode.value) if isinstance(enode.value, str) else None
                if name is None:
                    errors.append(RuleError(f"source encoding {enode.value!r} is not a text encoding Python knows "
                                            f"(e.g. utf-8, gbk, gb18030, big5, latin-1)", enode.loc))
                elif fmt not in (None, "csv"):
                    errors.append(RuleError(f"an encoding is for CSV sources, and this one is {fmt} (JSON Lines "
                                            f"and Parquet hold UTF-8)", enode.loc))
                else:
                    encoding = name
            rnode = source_node.get("rename")
            if rnode is not None:
                renamed = _renames(rnode, errors)
            tnode = source_node.get("types")
            if tnode is not None:
                if not isinstance(tnode.value, dict):
                    errors.append(RuleError("source types must be a mapping column: type", tnode.loc))
                else:
                    for col, cnode in tnode.value.items():
                        if col in RESERVED:
                            errors.append(RuleError(f"{col!r} is reserved (the row's {col} number); a source "
                                                    f"column of that name cannot be used", _loc(tnode, col)))
                        elif cnode.value not in SOURCE_TYPES:
                            errors.append(RuleError(f"type of source column {col!r} must be one of "
                                                    f"{', '.join(SOURCE_TYPES)}, not {cnode.value!r}", cnode.loc))
                        else:
                            types[col] = LogicalType(cnode.value)

    fields: dict[str, ExprSource] = {}
    fields_node = root.get("fields")
    if fields_node is None or not isinstance(fields_node.value, dict):
        errors.append(RuleError("missing 'fields:' (target field: expression)",
                                fields_node.loc if fields_node is not None else root.loc))
    else:
        for name, fnode in fields_node.value.items():
            if target is not None and name not in target.fields:
                close = difflib.get_close_matches(name, list(target.fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                errors.append(RuleError(f"stream {target.name!r} has no field {name!r}{hint}",
                                        _loc(fields_node, name)))
                continue
            src = _expression(fnode, f"field {name}", errors)
            if src is not None:
                fields[name] = src
        if target is not None:
            for req in REQUIRED_FIELDS:
                if req not in fields_node.value:
                    errors.append(RuleError(f"fields: {req!r} is required (every record needs an id and a ts)",
                                            fields_node.loc))
    where_node = root.get("where")
    where = _expression(where_node, "where", errors) if where_node is not None else None
    desc_node = root.get("description")

    # the source "stream": every plain name used, typed by source.types (default string)
    columns: list[str] = []
    uses: dict[str, tuple[str, ...]] = {}
    first_use: dict[str, SourceLocation] = {}
    for name, src in list(fields.items()) + ([("", where)] if where is not None else []):
        used = []
        for node in src.ast.walk():
            if isinstance(node, Field):
                if node.alias is not None:
                    errors.append(RuleError(f"source columns are plain names: write {node.name}, not {node.dotted}",
                                            src.location(node)))
                elif node.name not in RESERVED and node.name not in used:
                    used.append(node.name)
                    first_use.setdefault(node.name, src.location(node))
        if name:
            uses[name] = tuple(used)
        columns.extend(c for c in used if c not in columns)
    source_spec = StreamSpec("source", {c: FieldSpec(c, types.get(c, LogicalType.STRING)) for c in columns})

    checker = Checker(None)
    if target is not None:  # check what parsed, so that one run reports every problem
        for name, src in fields.items():
            ftype = target.fields[name].type
            t = checker.check(src, Scope(source_spec, extra=dict(RESERVED), what=f"field {name}"), want_bool=False)
            if t is not None and not _fits(ftype, t):
                checker.errors.append(RuleError(f"field {name}: a {t} cannot become a {ftype}", src.location()))
            values = target.fields[name].values
            if values:
                for lit in _result_literals(src.ast):
                    if lit.value not in values:
                        checker.errors.append(RuleError(f"field {name}: {lit.value!r} is not one of "
                                                        f"{', '.join(values)}", src.location(lit)))
        if where is not None:
            checker.check(where, Scope(source_spec, extra=dict(RESERVED), what="where"), want_bool=True)
    errors.extend(checker.errors)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise RuleErrors(errors)
    assert target is not None
    return Mapping(path=str(path), stream=target.name, fields=fields, region=region, format=fmt,
                   delimiter=delimiter, encoding=encoding, renamed=renamed, types=types,
                   where=where, columns=tuple(columns), uses=uses, first_use=first_use,
                   description=str(desc_node.value) if desc_node is not None else "")
