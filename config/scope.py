"""The organization a database connection works for, which PostgreSQL's row-level security
holds it to (the policies: tenancy/rls.py).

`scope_to(org)` sets the session setting `ledgerflow.org`: from then on the connection reads
and writes that organization's rows only, whatever a query forgets. Who sets it:
- a request, once it is authenticated (tenancy/authentication.py; the token lookup sets it in
  its own query, `scope_expression`), until it ends (`scope_middleware`);
- a job's work, for the organization of the object it works on (config/jobs/runner.py, the
  kind's `org_of`), until it ends (`scoped`);
- a command that names one organization (tenancy/management/commands/_base.py, audit_export,
  audit_verify), until the process ends.
A connection nothing scoped (beat's sweeps, the admin, the login page) sees every row. On
SQLite there are no policies: all of this costs nothing there, and guards nothing.
"""

from contextlib import contextmanager

from django.db import DatabaseError, connection

SETTING = "ledgerflow.org"


def _scope_of_connection():
    return getattr(connection, "ledgerflow_org", None)


def scope_expression(column: str) -> str:
    """A select-list item that scopes the connection to the organization in `column`: for a
    query that finds the organization and scopes at once (the token lookup); then tell
    `scoped_by_query`."""
    return f"set_config('{SETTING}', {column}::text, false)"


def scoped_by_query(org_id: int) -> None:
    """A query with `scope_expression` found `org_id`: the connection is scoped to it."""
    connection.ledgerflow_org = org_id


def scope_to(org_id: int) -> None:
    """From now on this connection sees and writes organization `org_id` only."""
    if connection.vendor != "postgresql" or _scope_of_connection() == org_id:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, false)", [SETTING, str(org_id)])
    connection.ledgerflow_org = org_id


def unscope() -> None:
    if _scope_of_connection() is None:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, '', false)", [SETTING])
    except DatabaseError:  # a session that cannot be told ends: the next one has no scope
        connection.close()
    connection.ledgerflow_org = None


@contextmanager
def scoped(org_id: int | None):
    """Organization `org_id` only inside the block (None: no change), as before after it."""
    previous = _scope_of_connection()
    if org_id is None or previous == org_id:
        yield
        return
    scope_to(org_id)
    try:
        yield
    finally:
        if previous is None:
            unscope()
        else:
            scope_to(previous)


@contextmanager
def unscoped():
    """For the rare write a request makes on behalf of other organizations (a lockout recorded
    in each organization of the account)."""
    previous = _scope_of_connection()
    unscope()
    try:
        yield
    finally:
        if previous is not None:
            scope_to(previous)


def forget_scope(sender, connection, **kwargs) -> None:
    """A new database session has no scope (connection_created)."""
    connection.ledgerflow_org = None


def scope_middleware(get_response):
    """A request's scope lasts as long as the request: its connection is unscoped when the
    response is made (and before, should a connection come scoped)."""

    def middleware(request):
        unscope()
        try:
            return get_response(request)
        finally:
            unscope()

    return middleware
