"""Model instances from one hand-written join, for the lookups every API request makes.

Every MLflow call resolves its token (with organization, user and membership) and most resolve
a run (with its experiment): fixed shapes, asked thousands of times a second. Compiling them
through the ORM cost more than running them (the token's select_related with its membership
took 0.9 ms of Python to compile and 0.4 ms in PostgreSQL). Here the SQL is written once and
each row becomes model instances the way the ORM would make them: the backend's and the
fields' converters applied (SQLite returns datetimes as text), related instances cached as
select_related caches them, `_state` marking them as loaded.

    joined = Join([(ApiToken, "t"), (Organization, "o"), (User, "u")],
                  "SELECT {columns}, m.role FROM ... WHERE t.lookup = %s")
    (token, org, user), (role,) = joined.one([lookup])

On PostgreSQL the query is bound on the server and prepared on each connection
(LEDGERFLOW_DB_PREPARE), so PostgreSQL no longer plans it per request: planning the token's
four-table join took 0.18 ms, six times its execution.
"""

import psycopg
from django.db import connections


class Join:
    """A query whose select list starts with some models' concrete columns (`{columns}` in
    `sql`), and the instances of its rows."""

    def __init__(self, models: list[tuple[type, str]], sql: str, using: str = "default"):
        self.using = using
        self.models = [model for model, _ in models]
        connection = connections[using]
        self.columns = ", ".join(
            f"{alias}.{connection.ops.quote_name(field.column)}"
            for model, alias in models for field in model._meta.concrete_fields)
        self.sql = sql.format(columns=self.columns)
        self._converters = {}  # per vendor, filled on first use
        self.width = sum(len(model._meta.concrete_fields) for model in self.models)

    def _plan(self, connection) -> list:
        plan = self._converters.get(connection.vendor)
        if plan is None:
            plan = []
            for model in self.models:
                fields = model._meta.concrete_fields
                converters = []
                for index, field in enumerate(fields):
                    column = field.get_col(model._meta.db_table)
                    found = connection.ops.get_db_converters(column) + \
                        field.get_db_converters(connection)
                    if found:
                        converters.append((index, column, found))
                plan.append((model, [field.attname for field in fields], converters))
            self._converters[connection.vendor] = plan
        return plan

    def one(self, params: list) -> tuple[list, tuple] | None:
        """The instances of the query's first row and the row's values after them, or None."""
        with _cursor(connections[self.using]) as cursor:
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        return None if row is None else (self.instances(row), tuple(row[self.width:]))

    def instances(self, row) -> list:
        """The models' instances from the first `width` values of `row`."""
        connection = connections[self.using]
        objects, start = [], 0
        for model, attnames, converters in self._plan(connection):
            values = list(row[start:start + len(attnames)])
            for index, column, functions in converters:
                for convert in functions:
                    values[index] = convert(values[index], column, connection)
            objects.append(model.from_db(self.using, attnames, values))
            start += len(attnames)
        return objects


class PreparingCursor(psycopg.Cursor):
    """A psycopg cursor that binds on the server and prepares what it runs on its connection,
    when the connection allows it (LEDGERFLOW_DB_PREPARE sets its prepare_threshold; Django
    binds on the client and, for poolers' sake, prepares nothing)."""

    def execute(self, query, params=None, *, prepare=True, binary=None):
        return super().execute(query, params, prepare=prepare, binary=binary)


def preparing_cursor(connection) -> PreparingCursor:
    """A PreparingCursor on Django's PostgreSQL connection (opened if need be), outside Django's
    cursor wrapper: its errors are psycopg's own."""
    connection.validate_thread_sharing()
    connection.ensure_connection()
    return PreparingCursor(connection.connection)


def _cursor(connection):
    """A PreparingCursor in Django's wrapper on PostgreSQL; Django's own cursor elsewhere, and
    where queries are being logged (DEBUG, CaptureQueriesContext), as Django logs a prepared
    statement's text as None."""
    if connection.vendor != "postgresql" or connection.queries_logged:
        return connection.cursor()
    return connection.make_cursor(preparing_cursor(connection))


def cache_related(instance, name: str, related) -> None:
    """`instance.<name>` answers `related` without a query, as select_related leaves it."""
    instance._meta.get_field(name).set_cached_value(instance, related)
