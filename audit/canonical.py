"""RFC 8785 (JSON Canonicalization Scheme) serialization, fast for our payloads.

Byte-for-byte what the `rfc8785` package produces (tests compare both on random data), but
strings are escaped by orjson and the common number forms are formatted directly; only the
rare floats (exponent forms, integers beyond 2**53) go through rfc8785. A document made only
of ASCII-keyed objects, strings, safe integers and floats in the range where orjson prints
what RFC 8785 prints (non-integral, from 1e-5 to 1e16 in magnitude; integral ones as the integers
they are) is handed to orjson whole, with its keys sorted; any other value in it is held out
and written by the exact path in its place: a thousand decision records in a few
milliseconds. Pure Python plus orjson, no Django: the offline verifier uses it too.
"""

import math
import re
import secrets

import orjson
import rfc8785

_SAFE = 2**53


def _float(value: float) -> bytes:
    if not math.isfinite(value):
        return rfc8785.dumps(value)  # raises rfc8785's FloatDomainError, as before
    if value == 0:
        return b"0"
    magnitude = abs(value)
    if value.is_integer() and magnitude < 1e16:
        # Below 1e16 an integral double's exact digits are also its shortest round-trip form.
        return str(int(value)).encode()
    if 1e-4 <= magnitude < 1e16:
        # Python's repr is the shortest round-trip form and, in this range, has no exponent:
        # exactly ECMAScript's Number.prototype.toString, which RFC 8785 prescribes.
        return repr(value).encode()
    return rfc8785.dumps(value)


def _sorted_keys(mapping: dict) -> list:
    keys = list(mapping)
    for key in keys:
        if type(key) is not str:
            raise TypeError(f"object keys must be strings, not {type(key).__name__}")
    if all(key.isascii() for key in keys):
        return sorted(keys)
    return sorted(keys, key=lambda key: key.encode("utf-16-be"))  # RFC 8785: UTF-16 order


_dumps_str = orjson.dumps


def _enc(value) -> bytes:
    kind = type(value)
    if kind is str:
        return _dumps_str(value)
    if kind is float:
        return _float(value)
    if kind is dict:
        return b"{" + b",".join([_dumps_str(key) + b":" + _enc(value[key])
                                 for key in _sorted_keys(value)]) + b"}"
    if kind is list or kind is tuple:
        return b"[" + b",".join([_enc(item) for item in value]) + b"]"
    if kind is int:
        if not -_SAFE < value < _SAFE:
            rfc8785.dumps(value)  # raises rfc8785's IntegerDomainError
        return str(value).encode()
    if value is None:
        return b"null"
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    return rfc8785.dumps(value)  # anything else: the reference decides


def _plain(value, marks: list, seen: dict):
    """`value` as orjson may encode it with sorted keys and still write RFC 8785: integral
    floats as the integers they equal; whatever orjson would write otherwise (floats below
    1e-5 or from 1e16 in magnitude, NaN, big integers, objects with keys that are not ASCII
    text, other types) replaced by a placeholder string, kept in `marks` for _enc. A container
    met again (one reference dict in every record) is converted once: `seen`, by identity."""
    kind = type(value)
    if kind is float:
        if value.is_integer() and -1e16 < value < 1e16:
            return int(value)
        if 1e-5 <= abs(value) < 1e16:  # orjson writes exponents below 1e-5, RFC 8785 below 1e-6
            return value
    elif kind is str or value is None or kind is bool:
        return value
    elif kind is int:
        if -_SAFE < value < _SAFE:
            return value
    elif kind is dict:
        if id(value) in seen:
            return seen[id(value)]
        plain = seen[id(value)] = {}
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                break
            # the commonest values inline (a call per number is most of the cost)
            if (type(item) is float and 1e-5 <= abs(item) < 1e16 and not item.is_integer()) \
                    or type(item) is str or item is None:
                plain[key] = item
            else:
                plain[key] = _plain(item, marks, seen)
        else:
            return plain
    elif kind is list or kind is tuple:
        return [_plain(item, marks, seen) for item in value]
    marks.append(value)
    mark = seen[id(value)] = f"{_MARK}{len(marks) - 1}"  # a dict met again: the same mark
    return mark


# A private-use character and a per-process random part: no document's own text matches.
_MARK = "\ue000" + secrets.token_hex(8) + ":"
_MARKED = re.compile(b'"' + re.escape(_MARK.encode()) + rb'(\d+)"')


def dumps(value) -> bytes:
    marks: list = []
    encoded = orjson.dumps(_plain(value, marks, {}), option=orjson.OPT_SORT_KEYS)
    if not marks:
        return encoded
    exact = [_enc(mark) for mark in marks]  # raises as rfc8785 does, for what it refuses
    return _MARKED.sub(lambda found: exact[int(found.group(1))], encoded)
