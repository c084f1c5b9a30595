"""YAML syntax errors in plain language: what went wrong in the analyst's terms, and the fix.

PyYAML says "mapping values are not allowed in this context"; an analyst
needs "this value holds ': ', quote it". Each case reads the problem and the
source line it points at, and falls back to PyYAML's words when it is unsure.
"""

from __future__ import annotations

import re

import yaml

_KEY_LINE = re.compile(r"^(\s*)(-\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*:(\s|$)")


def _line(text: str, mark: yaml.Mark | None) -> str:
    if mark is None:
        return ""
    lines = text.splitlines()
    return lines[mark.line] if mark.line < len(lines) else ""


def _value_of(line: str) -> str:
    m = _KEY_LINE.match(line)
    return line[m.end():].strip() if m else line.strip()


def plain_message(exc: yaml.MarkedYAMLError, text: str) -> tuple[str, yaml.Mark | None]:
    """(message, the mark it is about) for a YAML syntax error in ``text``."""
    problem = exc.problem or ""
    context = exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    line = _line(text, exc.problem_mark)
    char = line[exc.problem_mark.column] if exc.problem_mark and exc.problem_mark.column < len(line) else ""
    if "cannot start any token" in problem:
        if char == "\t":
            return "a tab in the indentation: YAML indents with spaces only", mark
        return (f"an unquoted value cannot start with {char!r} in YAML: put the value in quotes, "
                f"e.g. where: \"... {char}...\"", mark)
    if "undefined alias" in problem:
        return "an unquoted value cannot start with '*' in YAML (it reads an alias): put the value in quotes", mark
    if "unknown escape character" in problem:
        return ("inside double quotes a backslash starts an escape: write \\\\ for a backslash, or put the value "
                "in single quotes (matches(x, '\\d+'))"), mark
    if "quoted scalar" in context and "end of stream" in problem:
        return "this quote is never closed", exc.context_mark or mark
    if "expected ':'" in problem:
        where = exc.context_mark or mark
        return ("this line has no ':' after its key (write key: value), or it continues the value above "
                "without being indented under it"), where
    if "expected ',' or ']'" in problem or "expected ',' or '}'" in problem:
        return ("a [list] or {mapping} is not closed on this line, or one of its items holds ': ' or ','; "
                "quote such items"), exc.context_mark or mark
    if "another document" in problem:
        return "'---' starts a second document: one rule per file, so split it into two files", mark
    if "mapping values are not allowed" in problem:
        m = _KEY_LINE.match(line)
        if m and exc.problem_mark and exc.problem_mark.column == m.end(3) + (line[m.end(3):].find(":")):
            return "this key is indented more than the keys around it (or the line above lacks a ':')", mark
        return ("the value holds ': ' (a colon and a space), which YAML reads as a new key: put the whole value "
                "in quotes, e.g. title: \"Payments: too many\""), mark
    if "expected key" in problem:
        key = _KEY_LINE.match(line)
        # past the start of a key's value: the value itself is the trouble, not the line's indentation
        in_value = bool(key and exc.problem_mark and exc.problem_mark.column >= key.end())
        value = _value_of(line) if in_value else ""
        if value[:1] in ("{", "["):
            return ("a value that starts with '{' or '[' is read as a YAML mapping or list: put the whole value "
                    "in quotes, e.g. explain: \"{amount} paid\""), mark
        if value[:1] in ("'", '"'):
            return ("text goes on after the closing quote: quote the whole value (use ' around text that "
                    "holds \")"), mark
        return "this line does not line up with the keys above it: check its indentation", mark
    return f"YAML syntax: {problem or context}", mark
