"""RFC 8785 (JSON Canonicalization Scheme) serialization, fast for our payloads.

Byte-for-byte what the `rfc8785` package produces (tests compare both on random data), but
strings are escaped by orjson and the common number forms are formatted directly; only the
rare floats (exponent forms, integers beyond 2**53) go through rfc8785. Pure Python plus
orjson, no Django: the offline verifier uses it too.
"""

import math

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


def dumps(value) -> bytes:
    return _enc(value)
