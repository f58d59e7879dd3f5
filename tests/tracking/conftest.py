"""Fixtures for the tracking tests: the real `mlflow` client against pytest-django's live server.

`mlflow_as(persona_or_raw_token)` points the client (fluent API and `MlflowClient`) at the live
server with that persona's token. The mlflow client reads its credentials from the environment
on every request, so the latest `mlflow_as` call decides who every client in the test is.
"""

import contextlib
import os
import socket
import threading
import time

import pytest

CLIENT_ENV = {
    # Fail fast: the client retries 5xx with back-off by default, which would hide a server
    # error behind minutes of retries.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# Variables the mlflow client writes into os.environ itself (set_experiment, start_run, ...).
CLIENT_WRITTEN_ENV = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID", "MLFLOW_ACTIVE_MODEL_ID",
                      "_MLFLOW_ACTIVE_MODEL_ID")


def _reset_mlflow_state() -> None:
    """Forget the fluent API's active run, experiment and model, and cached server info."""
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.utils import server_info

    while mlflow.active_run() is not None:
        try:
            mlflow.end_run()
        except Exception:  # the run may belong to a server or token that is gone
            fluent._active_run_stack.get().pop()
    fluent._active_experiment_id = None
    fluent._last_active_run_id.set(None)
    if hasattr(fluent, "_reset_last_logged_model_id"):
        fluent._reset_last_logged_model_id()
    for name in CLIENT_WRITTEN_ENV:
        os.environ.pop(name, None)
    cache = getattr(server_info, "_SERVER_INFO_CACHE", None)
    if cache is not None:
        cache.clear()


def _request_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


@pytest.fixture
def _connections_closed_after_test(monkeypatch):
    """Hang up every HTTP connection to the live server when the test ends.

    The live server serves a keep-alive connection in a thread that holds a database
    connection until the client hangs up, and the client pools its connections (some stay
    referenced from exceptions the test kept). Left open, they outlive the test: PostgreSQL
    then refuses to drop the test database ("being accessed by other users")."""
    from django.core.servers.basehttp import ThreadedWSGIServer
    from mlflow.utils import request_utils

    make_session, sessions = request_utils._cached_get_request_session, []
    serve, open_sockets = ThreadedWSGIServer.process_request_thread, set()

    def recording_session(*args, **kwargs):
        sessions.append(make_session(*args, **kwargs))
        return sessions[-1]

    def recording_socket(server, request, client_address):
        open_sockets.add(request)
        try:
            serve(server, request, client_address)
        finally:
            open_sockets.discard(request)

    monkeypatch.setattr(request_utils, "_cached_get_request_session", recording_session)
    monkeypatch.setattr(ThreadedWSGIServer, "process_request_thread", recording_socket)
    yield
    for session in set(sessions):
        session.close()
    make_session.cache_clear()
    for request in list(open_sockets):
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_RDWR)
    deadline = time.monotonic() + 5
    while _request_threads() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def mlflow_as(live_server, monkeypatch, _connections_closed_after_test):
    """`mlflow_as(persona or raw token)` -> an `MlflowClient` talking to the live server."""
    import mlflow

    from tests.conftest import Persona

    for name, value in CLIENT_ENV.items():
        monkeypatch.setenv(name, value)

    def make(who) -> mlflow.MlflowClient:
        raw = who.raw_token if isinstance(who, Persona) else who
        _reset_mlflow_state()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", raw)
        mlflow.set_tracking_uri(live_server.url)
        return mlflow.MlflowClient()

    yield make
    _reset_mlflow_state()
    mlflow.set_tracking_uri(None)  # monkeypatch then restores the environment as it was
