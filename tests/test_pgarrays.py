"""config.pgarrays: binary array parameters read back by PostgreSQL as the values given."""

import math

import psycopg
import pytest
from django.db import connection, connections

from config.pgarrays import packed

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]  # PostgreSQL's wire format

CASES = {
    "int8": [0, 1, -1, 2**63 - 1, -(2**63), 1_700_000_000_000],
    "float8": [0.0, -0.0, 0.1 + 0.2, 1e-300, 5e20, -1.5, math.inf, -math.inf],
    "bool": [True, False, False, True],
    "varchar": ["loss", 'say "hi"', "back\\slash", "{brace, comma}", "ünïcødé ∑", "", "loss"],
}


@pytest.fixture
def pg():
    connection.ensure_connection()
    return connection.connection


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_kind_reads_back_equal_and_in_order(pg, kind):
    values = CASES[kind]
    with psycopg.Cursor(pg) as cursor:
        cursor.execute(f"SELECT v, pg_typeof(v)::text FROM unnest(%(a)b::{kind}[]) "
                       "WITH ORDINALITY AS t(v, n) ORDER BY n", {"a": packed(kind, values)})
        rows = cursor.fetchall()
    assert [v for v, _ in rows] == values
    if kind == "float8":  # -0.0 == 0.0: the sign is checked apart
        assert [math.copysign(1, v) for v, _ in rows] == [math.copysign(1, v) for v in values]
    assert {t for _, t in rows} == {"character varying" if kind == "varchar" else
                                    {"int8": "bigint", "float8": "double precision",
                                     "bool": "boolean"}[kind]}


def test_nan_reads_back_as_nan(pg):
    with psycopg.Cursor(pg) as cursor:
        cursor.execute("SELECT unnest(%(a)b::float8[])", {"a": packed("float8", [math.nan])})
        assert math.isnan(cursor.fetchone()[0])


@pytest.mark.parametrize("kind", sorted(CASES))
def test_an_empty_array_is_empty(pg, kind):
    with psycopg.Cursor(pg) as cursor:
        cursor.execute(f"SELECT cardinality(%(a)b::{kind}[])", {"a": packed(kind, [])})
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_an_int_outside_int8_is_an_overflow_error_before_any_query(value):
    with pytest.raises(OverflowError, match="int8"):
        packed("int8", [1, value])


def test_a_cursor_binding_on_the_client_refuses_a_packed_array(pg):
    """Django's cursors spell parameters into the SQL text; a packed array must not go as bytea."""
    with pytest.raises(psycopg.ProgrammingError), psycopg.ClientCursor(pg) as cursor:
        cursor.execute("SELECT %(a)s::int8[]", {"a": packed("int8", [1])})


def test_every_new_connection_can_bind_them(pg):
    """Registered per connection (tracking.apps), not on psycopg's defaults, which Django
    copies once, at its first connection."""
    fresh = connections.create_connection("default")
    try:
        fresh.ensure_connection()
        with psycopg.Cursor(fresh.connection) as cursor:
            cursor.execute("SELECT %(a)b::int8[]", {"a": packed("int8", [7])})
            assert cursor.fetchone()[0] == [7]
    finally:
        fresh.close()


@pytest.mark.parametrize(("kind", "values"), [("int8", [1, 2.0]), ("float8", [1.0, 2]),
                                              ("bool", [True, None]), ("varchar", ["a", 1])])
def test_an_element_of_another_type_is_a_type_error(kind, values):
    with pytest.raises(TypeError, match=kind):
        packed(kind, values)
