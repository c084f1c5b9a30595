"""The two type vocabularies: what a value means, and how a column holds it.

A :class:`LogicalType` is what rules, schemas and the checker speak of (docs/design.md §3);
a :class:`PhysicalKind` is the numpy representation of a column (``columns.vec``).
They differ on purpose: a ``timestamp`` is held as ``int`` (int64 nanoseconds),
an ``int`` field as ``float``. Both are str enums: a member equals, hashes and
prints as its text, so ``LogicalType.FLOAT == "float"`` and error messages name
types as a rule author writes them.
"""

from __future__ import annotations

from enum import Enum


class _Name(str, Enum):
    __str__ = str.__str__
    __format__ = str.__format__
    __hash__ = str.__hash__


class LogicalType(_Name):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    DURATION = "duration"  # seconds
    PHONE = "phone"
    ENUM = "enum"
    NULL = "null"  # the type of the literal ``null``: fits any type, and no field has it


class PhysicalKind(_Name):
    FLOAT = "float"  # float64
    INT = "int"  # int64
    BOOL = "bool"
    OBJECT = "object"  # str


FIELD_TYPES: tuple[LogicalType, ...] = tuple(t for t in LogicalType if t is not LogicalType.NULL)
NUMERIC_TYPES = frozenset({LogicalType.INT, LogicalType.FLOAT, LogicalType.DURATION})
STRING_TYPES = frozenset({LogicalType.STRING, LogicalType.PHONE, LogicalType.ENUM})
