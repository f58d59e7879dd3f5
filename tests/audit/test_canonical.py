"""audit.canonical must be byte-for-byte RFC 8785 (the rfc8785 package is the reference)."""

import random
import string

import pytest
import rfc8785

from audit.canonical import dumps

EDGE_FLOATS = [0.0, -0.0, 1e-4, 9.99999e-5, 1e-7, 1e16, 1e16 + 2, 1e21, 1e20, 5e-324,
               2.0**53, 2.0**53 + 2, -(2.0**53), 1.7976931348623157e308, 0.1, 1 / 3, 123.456]
ALPHABET = string.printable + "\u00e9\u2028\U0001f600\x00\x1f\"\\\u20ac\ud7ff\uffff\ue000"


def _random_value(rnd: random.Random, depth: int = 0):
    choice = rnd.random()
    if depth < 3 and choice < 0.2:
        return {_random_str(rnd): _random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 5))}
    if depth < 3 and choice < 0.35:
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 5))]
    if choice < 0.45:
        return rnd.choice(EDGE_FLOATS) * rnd.choice([1, -1])
    if choice < 0.55:
        return 10 ** rnd.uniform(-320, 308) * rnd.choice([1, -1])
    if choice < 0.65:
        return float(rnd.randint(-2**60, 2**60))
    if choice < 0.75:
        return rnd.randint(-2**53 + 1, 2**53 - 1)
    if choice < 0.9:
        return _random_str(rnd)
    return rnd.choice([None, True, False])


def _random_str(rnd: random.Random) -> str:
    return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 8)))


def _outcome(function, value):
    try:
        return function(value)
    except Exception as exc:  # the same values must be refused, with the same error type
        return type(exc)


@pytest.mark.parametrize("seed", range(4))
def test_it_matches_the_reference_on_random_documents(seed):
    rnd = random.Random(seed)
    for _ in range(5000):
        value = _random_value(rnd)
        assert _outcome(dumps, value) == _outcome(rfc8785.dumps, value), repr(value)[:300]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53, -(2**60)])
def test_it_refuses_what_rfc8785_refuses(value):
    refused = _outcome(dumps, value)
    assert isinstance(refused, type) and issubclass(refused, Exception)
    assert refused == _outcome(rfc8785.dumps, value)


def _record(rnd: random.Random) -> dict:
    """A decision-like document: ASCII keys, floats of every magnitude (integral ones too),
    strings with characters that need escaping: the shape orjson is handed whole."""
    def number():
        value = rnd.random() * 10 ** rnd.uniform(-8, 17) * rnd.choice([1, -1])
        return float(round(value)) if rnd.random() < 0.3 else value
    return {"subject_ref": _random_str(rnd), "inputs": {f"f{i}": number() for i in range(8)},
            "raw_score": number(), "labels": [_random_str(rnd), None, True],
            "count": rnd.randint(-2**53 + 1, 2**53 - 1), "nested": [{"a": number()}]}


@pytest.mark.parametrize("seed", range(4))
def test_records_handed_to_orjson_whole_match_the_reference(seed):
    rnd = random.Random(seed)
    for _ in range(3000):
        value = [_record(rnd) for _ in range(3)]
        assert _outcome(dumps, value) == _outcome(rfc8785.dumps, value), repr(value)[:300]


def test_a_value_met_twice_is_written_the_same_both_times():
    shared_plain, shared_exact = {"a": 0.5, "b": [1.0, 2]}, {"\u00e9": 1e-7, "z": 1e300}
    value = {"x": [shared_plain, shared_exact], "y": [shared_plain, shared_exact]}
    assert dumps(value) == rfc8785.dumps(value)
