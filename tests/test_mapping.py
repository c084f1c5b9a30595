"""Mapping files (engine/mapping.py) and the shipped maps of public data sets (samples/maps)."""

from __future__ import annotations

import contextlib
import json
import pathlib
import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fraudrules.columns.phones import normalise_one
from fraudrules.errors import InputError, RuleError, RuleErrors
from fraudrules.io.mapping import load_mapping
from fraudrules.io.records import parse_inputs, read_inputs
from fraudrules.pack.streams import load_schema
from tests.helpers import csv_module_only

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "rules" / "streams.yaml")
DATA = ROOT / "tests" / "data"
PAYSIM_MAP = ROOT / "samples" / "maps" / "paysim.yaml"
CELLYZER_MAP = ROOT / "samples" / "maps" / "cellyzer.yaml"
# CI has the shared data beside the clone (<repo>/../shared); a developer's checkout may not.
SHARED = ROOT.parent / "shared" / "data"
START = pd.Timestamp("2026-03-01T00:00:00+08:00").value
HOUR = 3600 * 10**9


def read_mapped(map_path, *files, **kw):
    mapping = load_mapping(map_path, SCHEMA)
    rs = read_inputs(parse_inputs([str(f) for f in files], SCHEMA, mapping=mapping), SCHEMA, mapping=mapping, **kw)
    for s in rs.inputs:
        assert s.read == s.scored + s.rejected + s.filtered
    return mapping, rs


def by_id(table) -> dict[str, int]:
    return {v: i for i, v in enumerate(table.columns["id"].values.tolist())}


def dump(rs) -> tuple:
    """The payment table's columns and lines, and the rejects, as plain Python."""
    t = rs.tables.get("payment")
    cols = {} if t is None else {k: v.values.tolist() for k, v in t.columns.items()}
    return cols, (t.line.tolist() if t is not None else []), [(r.line, r.reason) for r in rs.rejects]


def source_rows(path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.index = np.arange(1, len(df) + 1)  # the mapping's `row`
    return df


# --- PaySim ---------------------------------------------------------------------------------------


def test_paysim_map_over_the_head_of_the_file():
    _, rs = read_mapped(PAYSIM_MAP, DATA / "paysim_head.csv")
    assert rs.rejects == [] and rs.inputs[0].read == 300 and rs.inputs[0].stream == "payment"
    t = rs.tables["payment"]
    src = source_rows(DATA / "paysim_head.csv")
    ids = t.columns["id"].values.tolist()
    assert len(set(ids)) == 300 and set(ids) == {f"ps-{i}" for i in range(1, 301)}
    assert (np.diff(t.ts()) >= 0).all() and (np.diff(t.seq) > 0).all()
    pos = by_id(t)
    for row in (1, 2, 150, 300):
        i = pos[f"ps-{row}"]
        s = src.loc[row]
        assert t.ts()[i] == START + (int(s.step) - 1) * HOUR
        assert t.line[i] == row + 1
        assert t.columns["channel"].values[i] == s.type.lower()
        assert t.columns["amount"].values[i] == float(s.amount)
        assert t.columns["payer_account"].values[i] == s.nameOrig
        assert t.columns["payee_account"].values[i] == s.nameDest
        assert t.columns["balance_before"].values[i] == float(s.oldbalanceOrg)
        assert t.columns["balance_after"].values[i] == float(s.newbalanceOrig)
    assert set(t.columns["currency"].values.tolist()) == {"XXX"}
    assert t.columns["payer_phone"].null.all()
    # records of one step share a ts: they keep file order
    same = t.ts() == t.ts()[0]
    rows = [int(x[3:]) for x in np.array(ids)[same]]
    assert len(rows) > 1 and rows == sorted(rows)


def test_mapped_reading_does_not_depend_on_chunk_rows():
    _, whole = read_mapped(CELLYZER_MAP, DATA / "cellyzer_head.csv")
    _, parts = read_mapped(CELLYZER_MAP, DATA / "cellyzer_head.csv", chunk_rows=7)
    a, b = whole.tables["call"], parts.tables["call"]
    for name in a.columns:
        assert a.columns[name].values.tolist() == b.columns[name].values.tolist()
        assert a.columns[name].null.tolist() == b.columns[name].null.tolist()
    assert a.seq.tolist() == b.seq.tolist() and a.line.tolist() == b.line.tolist()



def test_mapped_rows_are_numbered_alike_on_the_record_by_record_path():
    """A CSV the vectorised path cannot read exactly (a bare CR, a quote left open) goes through Python's csv
    module: its `row` (PaySim's ids are built from it) and lines are those the vectorised path gives."""
    _, fast = read_mapped(PAYSIM_MAP, DATA / "paysim_head.csv")
    with csv_module_only():
        _, slow = read_mapped(PAYSIM_MAP, DATA / "paysim_head.csv", chunk_rows=7)
    a, b = fast.tables["payment"], slow.tables["payment"]
    assert a.columns["id"].values.tolist() == b.columns["id"].values.tolist()
    assert a.line.tolist() == b.line.tolist() and a.seq.tolist() == b.seq.tolist()

def test_where_filters_rows_and_counts_them(tmp_path):
    text = PAYSIM_MAP.read_text() + 'where: type != "DEBIT"\n'
    (tmp_path / "paysim.yaml").write_text(text)
    _, rs = read_mapped(tmp_path / "paysim.yaml", DATA / "paysim_head.csv")
    debit = int((source_rows(DATA / "paysim_head.csv").type == "DEBIT").sum())
    s = rs.inputs[0]
    assert debit > 0 and s.filtered == debit and s.scored == 300 - debit and s.rejected == 0
    assert "debit" not in set(rs.tables["payment"].columns["channel"].values.tolist())


# --- cellyzer -------------------------------------------------------------------------------------


def test_cellyzer_map_swaps_caller_and_callee_by_direction():
    _, rs = read_mapped(CELLYZER_MAP, DATA / "cellyzer_head.csv")
    assert rs.rejects == [] and rs.inputs[0].read == 300
    t = rs.tables["call"]
    src = source_rows(DATA / "cellyzer_head.csv")
    pos = by_id(t)
    assert len(pos) == 300
    assert (np.diff(t.ts()) >= 0).all()
    seen = set()
    for row, s in src.iterrows():
        i = pos[f"cz-{row}"]
        user, other = normalise_one(s.user, "GB"), normalise_one(s.other, "GB")
        caller, callee = t.columns["caller"].values[i], t.columns["callee"].values[i]
        if s.direction == "Outgoing":
            assert (caller, callee, t.columns["direction"].values[i]) == (user, other, "out")
        else:
            assert (caller, callee, t.columns["direction"].values[i]) == (other, user, "in")
        assert t.columns["answered"].values[i] == (s.direction != "Missed")
        assert t.columns["duration"].values[i] == float(s.duration)
        assert t.columns["cell_id"].values[i] == s.antenna_id
        want = pd.to_datetime(s.timestamp, format="%a %b %d %H:%M:%S %z %Y").tz_convert("UTC").value
        assert t.ts()[i] == want
        seen.add(s.direction)
    assert seen == {"Outgoing", "Incoming", "Missed"}
    # numbers without a country code are read in GB; invalid ones are kept as written
    callers = set(t.columns["caller"].values.tolist()) | set(t.columns["callee"].values.tolist())
    assert "+447434677419" in callers
    assert any(not c.startswith("+") for c in callers)


def test_a_mapping_reads_json_lines_too(tmp_path):
    src = source_rows(DATA / "cellyzer_head.csv")
    with open(tmp_path / "calls.jsonl", "w") as fh:
        for _, s in src.iterrows():
            rec = dict(s)
            rec["duration"] = int(rec["duration"])  # typed JSON values
            rec["user"] = int(rec["user"]) if rec["user"].isdigit() else rec["user"]
            fh.write(json.dumps(rec) + "\n")
    _, csv_rs = read_mapped(CELLYZER_MAP, DATA / "cellyzer_head.csv")
    _, json_rs = read_mapped(CELLYZER_MAP, tmp_path / "calls.jsonl")
    assert json_rs.rejects == []
    a, b = csv_rs.tables["call"], json_rs.tables["call"]
    for name in a.columns:
        assert a.columns[name].values.tolist() == b.columns[name].values.tolist(), name
    assert (a.line - 1).tolist() == b.line.tolist()


def test_json_lines_read_a_block_at_a_time_keep_each_records_row(tmp_path, monkeypatch):
    # `row` numbers the file's records from its first, a bad line's too, whatever the blocks the reader cuts
    # (io.read_jsonl): some of them parsed line by line for their bad line
    import functools

    from fraudrules.io import records
    from fraudrules.io.read_jsonl import JsonlReader

    lines = []
    for k, (_, s) in enumerate(source_rows(DATA / "cellyzer_head.csv").iterrows()):
        lines.append(json.dumps(dict(s)))
        if k % 37 == 5:
            lines.append('{"broken": ')  # a reject, and a record of the file
        if k % 53 == 7:
            lines.append("")  # not a record
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n")
    _, whole = read_mapped(CELLYZER_MAP, path)
    monkeypatch.setattr(records, "JsonlReader", functools.partial(JsonlReader, block_bytes=2_000))
    _, parts = read_mapped(CELLYZER_MAP, path)
    ids = whole.tables["call"].columns["id"].values.tolist()
    assert len(ids) == 300 and "cz-301" in ids  # numbered past the bad lines before them
    assert parts.tables["call"].columns["id"].values.tolist() == ids
    assert parts.rejects == whole.rejects and len(whole.rejects) == 8


def test_bad_source_values_and_null_required_targets_are_rejected(tmp_path):
    rows = [
        "user,other,direction,duration,timestamp,antenna_id,cost",
        "7434677419,7371326239,Outgoing,31,Mon Feb 11 07:18:23 +0000 2011,10,12",
        "7434677419,7371326239,Outgoing,x,Mon Feb 11 07:18:23 +0000 2011,10,12",
        "7434677419,7371326239,Incoming,5,garbage,10,12",
        "7434677419,7371326239,Sideways,5,Mon Feb 11 07:18:23 +0000 2011,10,12",
        "7434677419,7371326239,Incoming,5,,10,12",
    ]
    path = tmp_path / "calls.csv"
    path.write_text("\n".join(rows) + "\n")
    _, rs = read_mapped(CELLYZER_MAP, path)
    assert [(r.line, r.reason) for r in rs.rejects] == [
        (3, "duration: 'x' is not a number"),
        (4, "ts: parse_time(timestamp, \"%a %b %d %H:%M:%S %z %Y\") is null (timestamp='garbage')"),
        (6, "ts: parse_time(timestamp, \"%a %b %d %H:%M:%S %z %Y\") is null (timestamp='')"),
    ]
    t = rs.tables["call"]
    # an unknown direction maps to nulls, not to a guess (and is not a reject: the fields are optional)
    i = by_id(t)["cz-4"]
    assert t.columns["direction"].null[i] and t.columns["caller"].null[i] and t.columns["callee"].null[i]


def test_a_source_column_missing_from_the_file_is_an_input_error(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text("user,other,direction,duration,timestamp,antenna\n")
    # it points at the mapping's first use of the column, which is what the analyst edits
    line = next(n for n, text in enumerate(CELLYZER_MAP.read_text().splitlines(), 1) if "cell_id: antenna_id" in text)
    col = CELLYZER_MAP.read_text().splitlines()[line - 1].index("antenna_id") + 1
    with pytest.raises(InputError, match=rf"cellyzer.yaml:{line}:{col}: source column 'antenna_id' \(used by "
                                         r"cell_id\) is not in .*calls.csv \(columns: .*did you mean 'antenna'"):
        read_mapped(CELLYZER_MAP, path)


def test_inputs_with_a_mapping_go_through_it_unless_in_a_folder(tmp_path):
    # STREAM=PATH names the stream the mapping fills (#12); a folder's files named after streams stay native
    mapping = load_mapping(PAYSIM_MAP, SCHEMA)
    folder = tmp_path / "native"
    folder.mkdir()
    (folder / "payment.csv").write_text("id,ts\np1,2026-03-01T00:00:00Z\n")
    specs = parse_inputs([str(DATA / "paysim_head.csv"), str(folder)], SCHEMA, mapping=mapping)
    assert [(s.stream, s.format) for s in specs] == [(None, "csv"), ("payment", "csv")]
    rs = read_inputs(specs, SCHEMA, mapping=mapping)
    assert rs.inputs[0].scored == 300 and rs.inputs[1].scored == 1
    assert rs.tables["payment"].n == 301
    specs = parse_inputs([f"payment={DATA / 'paysim_head.csv'}"], SCHEMA, mapping=mapping)
    assert [(s.stream, s.format) for s in specs] == [(None, "csv")]


# --- errors in mapping files ----------------------------------------------------------------------


def write_map(tmp_path, text: str) -> pathlib.Path:
    path = tmp_path / "map.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_mapping_errors_carry_file_line_col(tmp_path):
    path = write_map(tmp_path, """
        stream: payment
        source:
          types: {step: integer}
        fields:
          id: concat("ps-", row)
          ts: timestamp("2026-03-01T00:00:00Z") +
          amout: amount
          amount: timestamp("2026-03-01")
          channel: lowr(type)
          currency: count(1h)
        """)
    with pytest.raises(RuleErrors) as info:
        load_mapping(path, SCHEMA)
    got = [(str(e.location), e.message) for e in info.value.errors]
    assert got == [
        (f"{path}:3:17", "type of source column 'step' must be one of string, int, float, bool, timestamp, "
                         "duration, phone, not 'integer'"),
        (f"{path}:6:42", "field ts: unexpected end of expression"),
        (f"{path}:7:3", "stream 'payment' has no field 'amout'; did you mean 'amount'?"),
        (f"{path}:8:11", "field amount: a timestamp cannot become a float"),
        (f"{path}:9:12", "unknown function 'lowr'; did you mean 'lower'?"),
        (f"{path}:10:13", "aggregate count() is not allowed in field currency"),
    ]


@pytest.mark.parametrize("text, where, message", [
    ("stream: fax\nfields: {id: row, ts: row}\n", "1:9", "unknown stream 'fax'"),
    ("stream: call\nfields:\n  id: row\n", "3:3", "fields: 'ts' is required"),
    ("stream: call\nfields:\n  id: row\n  ts: timestamp(t)\n  direction: '\"up\" if x else \"in\"'\n", "5:15",
     "field direction: 'up' is not one of in, out"),
    ("stream: call\nregion: XX\nfields:\n  id: row\n  ts: timestamp(t)\n", "2:9", "region 'XX'"),
    ("stream: call\nfields:\n  id: row\n  ts: timestamp(t)\nwhere: amount\n", "5:8", "where must be true/false"),
    ("stream: call\nfields:\n  id: row\n  ts: src.t\n", "4:7", "source columns are plain names"),
    ("stream: call\nfields:\n  id: row\n  ts: timestamp(t)\nrename: {}\n", "5:1", "unknown key 'rename'"),
])
def test_single_mapping_errors_are_located(tmp_path, text, where, message):
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises((RuleError, RuleErrors)) as info:
        load_mapping(path, SCHEMA)
    errors = info.value.errors if isinstance(info.value, RuleErrors) else [info.value]
    assert any(str(e.location) == f"{path}:{where}" and message in e.message for e in errors), \
        [str(e) for e in errors]


# --- the full public files ------------------------------------------------------------------------


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED} (CI has it beside the clone)")
@pytest.mark.parametrize("map_path, data, stream", [
    (PAYSIM_MAP, "paysim/paysim_sample.csv", "payment"),
    (CELLYZER_MAP, "cellyzer/calls.csv", "call"),
])
def test_maps_read_the_full_shared_files_without_rejects(map_path, data, stream):
    path = SHARED / data
    lines = sum(1 for _ in open(path, "rb")) - 1
    _, rs = read_mapped(map_path, path)
    s = rs.inputs[0]
    assert s.read == lines and s.scored == lines and s.rejected == 0 and rs.rejects == []
    t = rs.tables[stream]
    assert t.n == lines and len(set(t.columns["id"].values.tolist())) == lines
    assert (np.diff(t.ts()) >= 0).all()


# --- delimiters other than a comma ----------------------------------------------------------------


DELIMITED_MAP = """
    stream: payment
    source:
      delimiter: {delimiter}
      types: {{amount: float}}
    fields:
      id: ref
      ts: timestamp(at)
      payer_account: who
      amount: amount
      currency: '"CNY"'
    """


def _delimited(rows: list[tuple[str, list[str]]], delimiter: str) -> bytes:
    """The rows as CSV with ``delimiter``: quoted where a value holds the delimiter, a quote or a line end, as
    a writer would; ``stray``: a quote inside an unquoted value; ``short``: a record of three fields on one line;
    ``spread``: one of three fields over lines (the csv module rejects its first line and reads the others
    alone, as the delimiter makes them)."""
    def cell(value: str) -> str:
        if value == "" or any(c in value for c in (delimiter, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    out = [delimiter.join(["ref", "at", "who", "amount", "note"])]
    for i, (kind, (who, note)) in enumerate(rows):
        cells = [f"r{i}", f"2026-03-01T10:{i // 60:02d}:{i % 60:02d}Z", cell(who), f"{i}.5", cell(note)]
        if kind == "stray":
            cells[2] = 'A 5" screen'
        if kind == "short":
            cells = [c.replace("\n", " ") for c in cells[:3]]
        if kind == "spread":
            cells = cells[:2] + [cell(who + "\n" + note)]
        out.append(delimiter.join(cells) if kind != "blank" else "")
    return ("\n".join(out) + "\n").encode()


_VALUE = st.text(alphabet='ab ,;|\t"\n', max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["row", "row", "row", "stray", "short", "spread", "blank"]),
                          st.tuples(_VALUE, _VALUE)), max_size=20),
       st.sampled_from([";", "|", "\t"]), st.integers(1, 7))
def test_a_mapping_reads_any_delimiter_as_the_same_rows_with_commas(tmp_path_factory, rows, delimiter, chunk):
    """The oracle is the comma: the same rows written with commas and read by the same map without a
    delimiter give the same tables, lines and rejects, by the vectorised paths and by the csv module. Lines
    a spread record leaves to be read alone are other text with another delimiter: there the csv module,
    reading the whole file, is the oracle."""
    folder = tmp_path_factory.mktemp("delimited")
    tab = '"\\t"' if delimiter == "\t" else f'"{delimiter}"'
    other = write_map(folder, DELIMITED_MAP.format(delimiter=tab))
    comma = folder / "comma.yaml"
    comma.write_text(other.read_text().replace(f"delimiter: {tab}", 'delimiter: ","'))
    (folder / "other.csv").write_bytes(_delimited(rows, delimiter))
    (folder / "comma.csv").write_bytes(_delimited(rows, ","))

    _, got = read_mapped(other, folder / "other.csv", chunk_rows=chunk)
    with csv_module_only():
        _, slow = read_mapped(other, folder / "other.csv")
    assert dump(got) == dump(slow)
    if not any(kind == "spread" for kind, _ in rows):
        _, want = read_mapped(comma, folder / "comma.csv")
        assert dump(got) == dump(want)


def test_a_pipe_separated_cdr_export_reads_like_its_comma_twin(tmp_path):
    """PaySim's head, written with "|" (as switches export CDRs), gives the comma file's table."""
    src = pd.read_csv(DATA / "paysim_head.csv", dtype=str, keep_default_na=False)
    src.to_csv(tmp_path / "paysim.psv.csv", sep="|", index=False)
    pipe = tmp_path / "paysim.yaml"
    pipe.write_text(PAYSIM_MAP.read_text().replace("\nsource:", '\nsource:\n  delimiter: "|"\n  #', 1))
    assert 'delimiter: "|"' in pipe.read_text()
    _, want = read_mapped(PAYSIM_MAP, DATA / "paysim_head.csv")
    _, got = read_mapped(pipe, tmp_path / "paysim.psv.csv")
    assert got.rejects == [] and got.inputs[0].scored == 300
    a, b = want.tables["payment"], got.tables["payment"]
    for name in a.columns:
        assert a.columns[name].values.tolist() == b.columns[name].values.tolist(), name
    assert a.line.tolist() == b.line.tolist()
    # read with the comma map, the same file is one column: the map's columns are missing, said so
    with pytest.raises(InputError, match="step"):
        read_mapped(PAYSIM_MAP, tmp_path / "paysim.psv.csv")


@pytest.mark.parametrize("value, line, message", [
    ("'\"'", 3, "source delimiter must be one punctuation character or a tab"),
    ('"ab"', 3, "not 'ab'"),
    ("|", 4, "not ''"),  # YAML's block scalar, empty here: the delimiter must be quoted
    ("x", 3, "not 'x'"),
])
def test_a_bad_delimiter_is_located(tmp_path, value, line, message):
    path = write_map(tmp_path, DELIMITED_MAP.format(delimiter=value))
    with pytest.raises((RuleError, RuleErrors)) as info:
        load_mapping(path, SCHEMA)
    errors = info.value.errors if isinstance(info.value, RuleErrors) else [info.value]
    assert [(str(e.location).rsplit(":", 1)[0], message in e.message) for e in errors] == [(f"{path}:{line}", True)], \
        [str(e) for e in errors]


def test_a_delimiter_is_for_csv_sources(tmp_path):
    text = DELIMITED_MAP.format(delimiter='";"').replace("source:\n", "source:\n      format: jsonl\n")
    path = write_map(tmp_path, text)
    with pytest.raises(RuleError, match="a delimiter is for CSV sources, and this one is jsonl") as info:
        load_mapping(path, SCHEMA)
    assert str(info.value.location).startswith(f"{path}:4:")


def test_a_line_of_tabs_before_a_tab_separated_header_is_a_record_not_a_blank(tmp_path):
    """White space before the header is skipped, but a tab that separates fields makes a record of empty ones,
    the header as the csv module reads the file: every path then finds the map's columns missing alike."""
    path = write_map(tmp_path, DELIMITED_MAP.format(delimiter='"\\t"'))
    data = tmp_path / "tabs.csv"
    data.write_bytes(b"\t\t\n" + _delimited([("row", ("A", "n"))], "\t"))
    with pytest.raises(InputError, match="ref"):
        read_mapped(path, data)
    with csv_module_only(), pytest.raises(InputError, match="ref"):
        read_mapped(path, data)
    data.write_bytes(b"  \n" + _delimited([("row", ("A", "n"))], "\t"))  # spaces alone: a blank line
    assert read_mapped(path, data)[1].tables["payment"].line.tolist() == [3]


def test_the_lines_a_spread_record_leaves_are_read_with_the_delimiter(tmp_path):
    """A record of three fields over two lines: its first line is the reject, and the second, read alone, has
    the two fields its ";" makes (not the one a comma would)."""
    path = write_map(tmp_path, DELIMITED_MAP.format(delimiter='";"'))
    data = tmp_path / "spread.csv"
    data.write_bytes(_delimited([("row", ("A", "n")), ("spread", ("a", "x;y|z")), ("row", ("B", "m"))], ";"))
    _, rs = read_mapped(path, data, chunk_rows=1)
    assert [(r.line, r.reason) for r in rs.rejects] == [(3, "expected 5 columns, got 3"),
                                                        (4, "expected 5 columns, got 2")]
    assert rs.tables["payment"].columns["id"].values.tolist() == ["r0", "r2"]


# --- text encodings other than UTF-8 --------------------------------------------------------------


ENCODED_MAP = DELIMITED_MAP.replace("      delimiter: {delimiter}\n", "      encoding: {encoding}\n")
# text each encoding holds: simplified Chinese for GBK and GB 18030, traditional for Big5, accents for latin-1
_ALPHABETS = {"gbk": "张三李四银行,\"\n a", "gb18030": "张三李四银行€,\"\n a", "big5": "張三李四銀行,\"\n a",
              "latin-1": "éàüß,\"\n a"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(_ALPHABETS)).flatmap(lambda enc: st.tuples(
    st.just(enc), st.lists(st.tuples(st.sampled_from(["row", "row", "stray", "short", "blank"]),
                                     st.tuples(st.text(alphabet=_ALPHABETS[enc], max_size=6),
                                               st.text(alphabet=_ALPHABETS[enc], max_size=6))), max_size=20))),
       st.integers(1, 9), st.integers(16, 300))
# a quoted value over lines after a stray quote, a block's end inside it: the cut waits for the value to end
@example(drawn=("gb18030", [("row", ("", "")), ("row", ("", "")), ("stray", ("", "a\n€€€"))]), piece=1, block=16)
def test_a_mapping_reads_a_legacy_encoding_as_its_utf8_twin(tmp_path_factory, monkeypatch, drawn, piece, block):
    """A GBK (Big5, GB 18030, latin-1) file through a map that names its encoding gives the tables, lines and
    rejects of the same rows in UTF-8; read in small pieces, so that characters split between two reads and
    blocks, by the vectorised paths and by the csv module."""
    import functools

    from fraudrules.io import raw
    from fraudrules.io import records as rec
    from fraudrules.io.read_csv import CsvReader

    encoding, rows = drawn
    folder = tmp_path_factory.mktemp("encoded")
    legacy = write_map(folder, ENCODED_MAP.format(encoding=encoding))
    utf8 = folder / "utf8.yaml"
    utf8.write_text(legacy.read_text().replace(f"encoding: {encoding}", "encoding: utf-8"))
    text = _delimited(rows, ",").decode()
    (folder / "legacy.csv").write_bytes(text.encode(encoding))
    (folder / "utf8.csv").write_bytes(text.encode())

    want = dump(read_mapped(utf8, folder / "utf8.csv")[1])
    with monkeypatch.context() as m:
        m.setattr(raw.Transcoded, "PIECE", piece)
        m.setattr(rec, "CsvReader", functools.partial(CsvReader, block_bytes=block))
        assert dump(read_mapped(legacy, folder / "legacy.csv", chunk_rows=3)[1]) == want
        with csv_module_only():
            assert dump(read_mapped(legacy, folder / "legacy.csv")[1]) == want


@pytest.mark.parametrize("slow", [False, True])
def test_bytes_the_encoding_lacks_reject_their_row_and_never_pass_as_utf8(tmp_path, slow):
    """Big5 has no character C3 80, but those bytes are UTF-8's "À": passed through as they are, the row
    would read as text that is not in the file. It is rejected, as a row of GBK that holds 0xFF is."""
    with csv_module_only() if slow else contextlib.nullcontext():
        for encoding, bad in (("big5", b"a\xc3\x80b"), ("gbk", b"a\xffb")):
            path = write_map(tmp_path, ENCODED_MAP.format(encoding=encoding))
            good = [("row", (who, "n")) for who in ("張三" if encoding == "big5" else "张三", "B")]
            data = bytearray(_delimited(good + [("row", ("X", "n"))], ",").decode().encode(encoding))
            data[data.rindex(b"X")] = bad[0]
            data[data.rindex(bad[:1]) + 1: data.rindex(bad[:1]) + 1] = bad[1:]
            (tmp_path / "in.csv").write_bytes(bytes(data))
            _, rs = read_mapped(path, tmp_path / "in.csv")
            assert [(r.line, r.reason) for r in rs.rejects] == [(4, f"invalid {encoding}")]
            assert rs.tables["payment"].columns["payer_account"].values.tolist() == [good[0][1][0], "B"]


@pytest.mark.parametrize("text, message", [
    ("encoding: rot13", "source encoding 'rot13' is not a text encoding"),
    ("encoding: klingon", "source encoding 'klingon' is not a text encoding"),
    ("format: jsonl\n      encoding: gbk", "an encoding is for CSV sources, and this one is jsonl"),
])
def test_a_bad_encoding_is_located(tmp_path, text, message):
    path = write_map(tmp_path, ENCODED_MAP.format(encoding="X").replace("encoding: X", text))
    with pytest.raises(RuleError, match=message) as info:
        load_mapping(path, SCHEMA)
    assert str(info.value.location).startswith(f"{path}:{3 + text.count(chr(10))}:")


# --- columns whose names are not plain names -------------------------------------------------------


CHINESE_MAP = """
    stream: payment
    source:
      encoding: gbk
      rename: {交易流水号: ref, 交易时间: at, 付款账号: payer, "Amount (CNY)": amount}
      types: {amount: float}
    fields:
      id: ref
      ts: timestamp(at)
      payer_account: payer
      amount: amount
      currency: '"CNY"'
    """


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_rename_gives_columns_of_a_chinese_export_plain_names(tmp_path, fmt):
    """A bank's export with Chinese column names (in GBK, as Excel saves it) maps through plain names; the
    reasons of rejects name the file's column."""
    header = ["交易流水号", "交易时间", "付款账号", "Amount (CNY)"]
    rows = [["T1", "2026-03-01T10:00:00Z", "张三", "12.5"], ["T2", "2026-03-01T10:00:01Z", "李四", "abc"]]
    text = CHINESE_MAP
    if fmt == "csv":
        (tmp_path / "export.csv").write_bytes(
            "\n".join(",".join(r) for r in [header, *rows]).encode("gbk") + b"\n")
    else:  # an account number as a JSON number, or true: a text column takes any single value as its text
        text = text.replace("      encoding: gbk\n", "")
        rows[0][2] = 6222021234
        rows.append(["T3", "2026-03-01T10:00:02Z", True, 3])
        (tmp_path / "export.jsonl").write_text(
            "".join(json.dumps(dict(zip(header, r)), ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    path = write_map(tmp_path, text)
    _, rs = read_mapped(path, tmp_path / f"export.{fmt}")
    t = rs.tables["payment"]
    assert t.columns["id"].values.tolist() == (["T1"] if fmt == "csv" else ["T1", "T3"])
    assert t.columns["payer_account"].values.tolist() == (["张三"] if fmt == "csv" else ["6222021234", "true"])
    assert t.columns["amount"].values.tolist() == ([12.5] if fmt == "csv" else [12.5, 3.0])
    line = 3 if fmt == "csv" else 2
    assert [(r.line, r.reason) for r in rs.rejects] == [(line, "Amount (CNY): 'abc' is not a number")]


def test_a_renamed_column_missing_from_the_file_is_named_as_the_file_names_it(tmp_path):
    path = write_map(tmp_path, CHINESE_MAP.replace("      encoding: gbk\n", ""))
    (tmp_path / "export.csv").write_text("交易流水号,交易时间,付款账户,Amount (CNY)\nT1,2026-03-01T10:00:00Z,A,1\n")
    with pytest.raises(InputError, match=r"source column '付款账号' \(renamed payer\) \(used by payer_account\) is "
                                         r"not in .*; did you mean '付款账户'\?"):
        read_mapped(path, tmp_path / "export.csv")


@pytest.mark.parametrize("rename, line, message", [
    ("{交易时间: 时间}", 3, "rename '交易时间' to a plain name"),
    ("{a b: x y}", 3, "not 'x y'"),
    ("{x: row}", 3, "not 'row'"),
    ("{x: a.b}", 3, "not 'a.b'"),
    ("{x: a, y: a}", 3, "two columns are renamed 'a': 'x' and 'y'"),
    ("[x, y]", 3, "source rename must be a mapping"),
])
def test_a_bad_rename_is_located(tmp_path, rename, line, message):
    path = write_map(tmp_path, CHINESE_MAP.replace(
        "{交易流水号: ref, 交易时间: at, 付款账号: payer, \"Amount (CNY)\": amount}", rename))
    with pytest.raises((RuleError, RuleErrors)) as info:
        load_mapping(path, SCHEMA)
    errors = info.value.errors if isinstance(info.value, RuleErrors) else [info.value]
    assert any(str(e.location).startswith(f"{path}:{line + 1}:") and message in e.message for e in errors), \
        [str(e) for e in errors]


@pytest.mark.parametrize("separator, shown", [(";", '";"'), ("\t", '"\\t"'), ("|", '"|"')])
def test_a_header_of_one_column_holding_another_separator_says_which(tmp_path, separator, shown):
    path = write_map(tmp_path, DELIMITED_MAP.format(delimiter='","'))
    (tmp_path / "in.csv").write_text(separator.join(["ref", "at", "who", "amount"]) + "\n")
    with pytest.raises(InputError) as info:
        read_mapped(path, tmp_path / "in.csv")
    assert f"the header looks separated by {shown}: source: {{delimiter: {shown}}}" in str(info.value)


def test_a_null_required_field_shows_its_expression_cut_to_60_characters_and_its_first_three_columns(tmp_path):
    path = write_map(tmp_path, """
        stream: payment
        fields:
          id: 'a if c == "a-needle-of-some-length" else (b if d == "another" else null)'
          ts: timestamp(at)
          currency: '"CNY"'
        """)
    (tmp_path / "in.csv").write_text("a,b,c,d,at\nA1,B1,zz,yy,2026-03-01T10:00:00Z\n"
                                     "A2,B2,a-needle-of-some-length,yy,2026-03-01T10:00:00Z\n")
    _, rs = read_mapped(path, tmp_path / "in.csv")
    assert [(r.line, r.reason) for r in rs.rejects] == [
        (2, "id: a if c == \"a-needle-of-some-length\" else (b if d == \"anot... is null (a='A1', c='zz', b='B1')")]
    assert rs.tables["payment"].columns["id"].values.tolist() == ["A2"]
