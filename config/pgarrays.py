"""One-dimensional PostgreSQL arrays as binary query parameters, packed by struct in C.

psycopg's own list dumper spends a Python call on every element (1,000 points are 5,000
calls); a text literal made with str.join needs repr() of every float and escaping of text.
`packed(kind, values)` builds the array's binary wire format (array_send) in one struct.pack
or bytes.join, and psycopg sends it as is with the array's type: bind it as `%(name)b`.

    with psycopg.Cursor(connection) as cursor:  # binds on the server
        cursor.execute("SELECT unnest(%(steps)b)", {"steps": packed("int8", [1, 2, 3])})

Elements may not be None (no null bitmap is written) and must be of the kind's exact Python
type (TypeError otherwise); an int outside int64 raises OverflowError, as PostgreSQL's int8
would refuse it. The dumpers are registered on each new connection (`register`).
"""

import itertools
import struct

from psycopg.adapt import Dumper
from psycopg.pq import Format

# element type: (element oid, array oid, struct code of one element, its size)
_KINDS = {
    "int8": (20, 1016, "q", 8),
    "float8": (701, 1022, "d", 8),
    "bool": (16, 1000, "?", 1),
    "varchar": (1043, 1015, None, None),
}
_PYTHON = {"int8": int, "float8": float, "bool": bool, "varchar": str}  # exact types
_HEADER = struct.Struct(">iiIii")  # dimensions, has nulls, element oid, length, lower bound


class PackedArray:
    """An array already in PostgreSQL's binary format; subclasses name the array type. Not
    bytes, so that a cursor binding on the client (Django's) refuses it instead of sending
    a bytea: bind it with a server-binding cursor, `psycopg.Cursor(connection.connection)`."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


def _dumper(oid: int) -> type[Dumper]:
    class PackedArrayDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: PackedArray) -> bytes:
            return obj.data

    PackedArrayDumper.oid = oid
    return PackedArrayDumper


_TYPES = {kind: type(f"Packed_{kind}", (PackedArray,), {"__slots__": ()}) for kind in _KINDS}
_DUMPERS = {kind: _dumper(array_oid) for kind, (_, array_oid, _, _) in _KINDS.items()}


def register(adapters) -> None:
    """Teach a psycopg connection's (or cursor's) adapters the packed arrays. Django gives its
    connections a copy of psycopg's defaults taken at its first connection, so registering
    there at import time would depend on import order: each new connection registers them
    (tracking.apps, on connection_created)."""
    for kind, cls in _TYPES.items():
        adapters.register_dumper(cls, _DUMPERS[kind])


def packed(kind: str, values: list) -> PackedArray:
    """`values` (ints, floats, bools or strs, as `kind` says) as a binary array parameter."""
    element_oid, _, code, size = _KINDS[kind]
    if not set(map(type, values)) <= {_PYTHON[kind]}:  # "?" would pack any object's truth
        raise TypeError(f"{kind} array elements must be {_PYTHON[kind].__name__}")
    count = len(values)
    if not count:
        return _TYPES[kind](struct.pack(">iiI", 0, 0, element_oid))
    head = _HEADER.pack(1, 0, element_oid, count, 1)
    if code is None:  # text: each element's own length
        encoded: dict[str, bytes] = {}
        parts = [head]
        for value in values:
            element = encoded.get(value)
            if element is None:
                data = value.encode()
                element = encoded[value] = len(data).to_bytes(4, "big") + data
            parts.append(element)
        return _TYPES[kind](b"".join(parts))
    try:
        body = struct.pack(">" + ("i" + code) * count,  # (length, element) pairs
                           *itertools.chain.from_iterable(zip(itertools.repeat(size), values)))
    except struct.error as exc:  # the types are right: an int outside int64
        raise OverflowError(f"{kind} array element out of range: {exc}") from exc
    return _TYPES[kind](head + body)
