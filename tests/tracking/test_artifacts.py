"""The MLflow artifact proxy: the real mlflow client logs, lists and downloads through it;
organizations are isolated, writes need WRITE, paths are checked, every write is audited, and
bodies stream both ways."""

import contextlib
import hashlib
import http.client
import io
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from django.core.files.storage import storages
from django.db import transaction
from django.test import Client, RequestFactory

from audit.actors import Actor
from audit.models import AuditEvent
from audit.services import audit_record
from tenancy.authentication import SESSION_ORG_KEY
from tenancy.services import token_create
from tracking import artifacts as artifact_services
from tracking.artifacts import artifact_delete, artifact_upload
from tracking.mlflow_api.artifacts import artifacts_endpoint
from tracking.mlflow_api.views import mlflow_endpoint
from tracking.models import Experiment, LoggedModel, Run

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
TESTER = Actor.command("test")


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def artifact_root(settings, tmp_path) -> Path:
    """Each test gets its own artifact directory (the live server shares these settings)."""
    root = tmp_path / "artifacts"
    settings.STORAGES = {**settings.STORAGES, "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(root), "allow_overwrite": True},
    }}
    return root


# Made with the ORM (not the tracking RPCs) so these tests need only the artifact endpoints;
# on PostgreSQL a tenant write commits only with an audit event, so each gets one.
@transaction.atomic
def make_experiment(org, name="exp", *, default=False) -> Experiment:
    now = int(time.time() * 1000)
    experiment = Experiment.objects.create(org=org, name=name, is_default=default,
                                           creation_time=now, last_update_time=now)
    experiment.artifact_location = f"mlflow-artifacts:/{experiment.public_id}"
    experiment.save(update_fields=["artifact_location"])
    audit_record(org=org, actor=TESTER, action="experiment.created", target=experiment)
    return experiment


@transaction.atomic
def make_run(experiment) -> Run:
    run_uuid = uuid.uuid4().hex
    run = Run.objects.create(
        org=experiment.org, experiment=experiment, run_uuid=run_uuid, start_time=0,
        artifact_uri=f"mlflow-artifacts:/{experiment.public_id}/{run_uuid}/artifacts")
    audit_record(org=experiment.org, actor=TESTER, action="run.created", target=run)
    return run


@pytest.fixture
def run(personas) -> Run:
    return make_run(make_experiment(personas.org_a))


def rel(run: Run, name: str = "") -> str:
    """A path as the proxy names it: "<exp>/<run>/artifacts[/name]"."""
    root = run.artifact_uri.removeprefix("mlflow-artifacts:/")
    return f"{root}/{name}" if name else root


def bearer(persona) -> dict:
    return {"Authorization": f"Bearer {persona.raw_token}"}


def put(base, persona, path, body=b"data"):
    return requests.put(f"{base}{PROXY}/{path}", data=body, headers=bearer(persona), timeout=60)


def uploads(org):
    return AuditEvent.objects.filter(org=org, action="artifact.uploaded").order_by("seq")


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) \
        if root.exists() else []


@pytest.fixture
def mlflow_repo(mlflow_as):
    """`mlflow_repo(persona, uri)`: the client's own repository for an artifact URI, which
    needs only the artifact endpoints (no tracking RPC)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    def make(persona, uri):
        mlflow_as(persona)
        return get_artifact_repository(uri)

    return make


# -- the real client ----------------------------------------------------------------------

def test_the_mlflow_client_logs_lists_and_downloads_a_tree(live_server, personas, run,
                                                           mlflow_repo, tmp_path):
    import mlflow.artifacts

    source = tmp_path / "source"
    (source / "sub" / "deeper").mkdir(parents=True)
    (source / "top.txt").write_text("top")
    (source / "sub" / "model.pkl").write_bytes(b"\x00\x01binary")
    (source / "sub" / "deeper" / "notes.md").write_text("# notes")
    single = tmp_path / "metrics.json"
    single.write_text('{"auc": 0.9}')

    repo = mlflow_repo(personas.alice, run.artifact_uri)
    repo.log_artifacts(str(source), artifact_path="tree")
    repo.log_artifact(str(single))

    assert [(f.path, f.is_dir) for f in repo.list_artifacts()] == [
        ("metrics.json", False), ("tree", True)]
    listed = repo.list_artifacts("tree/sub")
    assert [(f.path, f.is_dir, f.file_size) for f in listed] == [
        ("tree/sub/deeper", True, None), ("tree/sub/model.pkl", False, 8)]

    out = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=run.artifact_uri, dst_path=str(tmp_path / "out")))
    assert files_under(out) == ["metrics.json", "tree/sub/deeper/notes.md", "tree/sub/model.pkl",
                                "tree/top.txt"]
    assert (out / "tree" / "sub" / "model.pkl").read_bytes() == b"\x00\x01binary"
    one = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{run.artifact_uri}/tree/top.txt", dst_path=str(tmp_path / "one"))
    assert Path(one).read_text() == "top"
    names = mlflow.artifacts.list_artifacts(artifact_uri=f"{run.artifact_uri}/tree")
    assert sorted(f.path for f in names) == ["tree/sub", "tree/top.txt"]
    assert uploads(personas.org_a).count() == 4


def test_the_client_reads_an_empty_or_missing_directory_as_empty(live_server, personas, run,
                                                                 mlflow_repo):
    repo = mlflow_repo(personas.alice, run.artifact_uri)
    assert repo.list_artifacts() == []
    assert repo.list_artifacts("nothing/here") == []


# -- the wire format ----------------------------------------------------------------------

def test_listing_speaks_mlflows_json(live_server, personas, run):
    base = live_server.url
    put(base, personas.alice, rel(run, "a.txt"), b"12345")
    put(base, personas.alice, rel(run, "dir/b.txt"), b"1")

    def listing(path):
        response = requests.get(f"{base}{PROXY}", params={"path": path},
                                headers=bearer(personas.alice), timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    assert listing(rel(run)) == {"files": [
        {"path": "a.txt", "is_dir": False, "file_size": 5},
        {"path": "dir", "is_dir": True}]}
    assert listing(rel(run, "dir/")) == {"files": [{"path": "b.txt", "is_dir": False,
                                                    "file_size": 1}]}
    assert listing(rel(run, "missing")) == {}  # protobuf JSON drops the empty list
    assert listing(rel(run, "a.txt")) == {}  # a file lists as nothing, as in MLflow
    root = listing("")
    assert root == {"files": [{"path": run.experiment.public_id, "is_dir": True}]}


def test_download_is_an_attachment_with_mlflows_content_type(live_server, personas, run):
    base = live_server.url
    put(base, personas.alice, rel(run, "model/MLmodel"), b"flavors: {}\n")
    put(base, personas.alice, rel(run, "page.html"), b"<script>alert(1)</script>")
    response = requests.get(f"{base}{PROXY}/{rel(run, 'model/MLmodel')}",
                            headers=bearer(personas.alice), timeout=30)
    assert response.status_code == 200
    assert response.content == b"flavors: {}\n"
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["Content-Length"] == "12"
    assert response.headers["Content-Disposition"] == 'attachment; filename="MLmodel"'
    html = requests.get(f"{base}{PROXY}/{rel(run, 'page.html')}",
                        headers=bearer(personas.alice), timeout=30)
    assert html.headers["X-Content-Type-Options"] == "nosniff"
    assert html.headers["Content-Security-Policy"] == "sandbox"
    assert html.headers["Content-Disposition"].startswith("attachment")


def test_missing_files_and_directories_answer_mlflow_errors(live_server, personas, run):
    base, headers = live_server.url, bearer(personas.alice)
    put(base, personas.alice, rel(run, "dir/x.txt"))
    missing = requests.get(f"{base}{PROXY}/{rel(run, 'nope.txt')}", headers=headers, timeout=30)
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    directory = requests.get(f"{base}{PROXY}/{rel(run, 'dir')}", headers=headers, timeout=30)
    assert directory.status_code == 400
    assert directory.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    gone = requests.delete(f"{base}{PROXY}/{rel(run, 'nope.txt')}", headers=headers, timeout=30)
    assert gone.status_code == 404
    assert gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    unknown = requests.get(f"{base}{PROXY}/999999999/x.txt", headers=headers, timeout=30)
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_without_credentials_it_answers_401(live_server, personas, run):
    response = requests.get(f"{live_server.url}{PROXY}", params={"path": rel(run)}, timeout=30)
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


def test_the_ajax_api_variant_serves_the_same_files(live_server, personas, run):
    base = live_server.url
    response = requests.put(f"{base}/ajax-api/2.0/mlflow-artifacts/artifacts/{rel(run, 'x')}",
                            data=b"via ajax", headers=bearer(personas.alice), timeout=30)
    assert response.status_code == 200, response.text
    got = requests.get(f"{base}{PROXY}/{rel(run, 'x')}", headers=bearer(personas.alice),
                       timeout=30)
    assert got.content == b"via ajax"


def test_a_browser_session_reads_but_needs_csrf_to_write(personas, run):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(personas.alice.user)
    session = browser.session
    session[SESSION_ORG_KEY] = personas.org_a.pk
    session.save()
    listing = browser.get("/ajax-api/2.0/mlflow-artifacts/artifacts", {"path": rel(run)})
    assert listing.status_code == 200
    refused = browser.put(f"/ajax-api/2.0/mlflow-artifacts/artifacts/{rel(run, 'x')}",
                          data=b"x", content_type="application/octet-stream")
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "PERMISSION_DENIED"
    # Sessions do not work on /api/ at all: that needs a token.
    assert browser.get(PROXY, {"path": rel(run)}).status_code == 401


# -- tracking's artifacts/list RPC --------------------------------------------------------

def test_the_artifacts_list_rpc_lists_relative_to_the_run(live_server, personas, run):
    base = live_server.url
    put(base, personas.alice, rel(run, "top.txt"), b"abc")
    put(base, personas.alice, rel(run, "sub/inner.txt"), b"a")
    url = f"{base}/api/2.0/mlflow/artifacts/list"
    root = requests.get(url, params={"run_id": run.run_uuid}, headers=bearer(personas.alice),
                        timeout=30).json()
    assert root == {"root_uri": run.artifact_uri, "files": [
        {"path": "sub", "is_dir": True}, {"path": "top.txt", "is_dir": False, "file_size": 3}]}
    sub = requests.get(url, params={"run_id": run.run_uuid, "path": "sub"},
                       headers=bearer(personas.alice), timeout=30).json()
    assert sub["files"] == [{"path": "sub/inner.txt", "is_dir": False, "file_size": 1}]
    empty = requests.get(url, params={"run_id": run.run_uuid, "path": "none"},
                         headers=bearer(personas.alice), timeout=30).json()
    assert empty == {"root_uri": run.artifact_uri}
    bad = requests.get(url, params={"run_id": run.run_uuid, "path": "../x"},
                       headers=bearer(personas.alice), timeout=30)
    assert bad.status_code == 400
    foreign = requests.get(url, params={"run_id": run.run_uuid},
                           headers=bearer(personas.charlie), timeout=30)
    assert foreign.status_code == 404
    assert foreign.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_the_rpc_is_registered_with_the_dispatcher(personas, run):
    request = RequestFactory().get("/api/2.0/mlflow/artifacts/list", {"run_id": run.run_uuid},
                                   HTTP_AUTHORIZATION=f"Bearer {personas.bob.raw_token}")
    response = mlflow_endpoint(request, "artifacts/list")
    assert response.status_code == 200
    assert b'"root_uri"' in response.content
    request = RequestFactory().get("/api/2.0/mlflow/artifacts/list",
                                   HTTP_AUTHORIZATION=f"Bearer {personas.bob.raw_token}")
    response = mlflow_endpoint(request, "artifacts/list")
    assert response.status_code == 400
    assert b"'run_id'" in response.content


# -- isolation and permissions ------------------------------------------------------------

def test_charlie_gets_404_for_everything_of_org_a(live_server, personas, run, artifact_root):
    base, headers = live_server.url, bearer(personas.charlie)
    put(base, personas.alice, rel(run, "secret.txt"), b"A's secret")
    before = files_under(artifact_root)
    path = rel(run, "secret.txt")
    for response in (
        requests.get(f"{base}{PROXY}/{path}", headers=headers, timeout=30),
        requests.put(f"{base}{PROXY}/{path}", data=b"overwrite", headers=headers, timeout=30),
        requests.put(f"{base}{PROXY}/{rel(run, 'new.txt')}", data=b"x", headers=headers,
                     timeout=30),
        requests.delete(f"{base}{PROXY}/{path}", headers=headers, timeout=30),
        requests.get(f"{base}{PROXY}", params={"path": rel(run)}, headers=headers, timeout=30),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert files_under(artifact_root) == before
    # Both organizations have a Default experiment "0": the same path names different files.
    default_a = make_run(Experiment.objects.get(org=personas.org_a, is_default=True))
    put(base, personas.alice, rel(default_a, "a.txt"), b"A")
    denied = requests.get(f"{base}{PROXY}/{rel(default_a, 'a.txt')}", headers=headers, timeout=30)
    assert denied.status_code == 404
    listing = requests.get(f"{base}{PROXY}", params={"path": rel(default_a)}, headers=headers,
                           timeout=30)
    assert listing.json() == {}
    assert requests.get(f"{base}{PROXY}", headers=headers, timeout=30).json() == {}
    assert AuditEvent.objects.filter(org=personas.org_b, action__startswith="artifact.") \
        .count() == 0


def test_read_only_callers_get_403_for_writes(live_server, personas, run, artifact_root):
    base = live_server.url
    put(base, personas.alice, rel(run, "kept.txt"), b"kept")
    _token, read_only_raw = token_create(org=personas.org_a, user=personas.alice.user,
                                         name="ro", actor=TESTER, read_only=True)
    for headers in (bearer(personas.bob), {"Authorization": f"Bearer {read_only_raw}"}):
        for response in (
            requests.put(f"{base}{PROXY}/{rel(run, 'x.txt')}", data=b"x", headers=headers,
                         timeout=30),
            requests.delete(f"{base}{PROXY}/{rel(run, 'kept.txt')}", headers=headers, timeout=30),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["error_code"] == "PERMISSION_DENIED"
        got = requests.get(f"{base}{PROXY}/{rel(run, 'kept.txt')}", headers=headers, timeout=30)
        assert got.content == b"kept"
    assert files_under(artifact_root) == [f"{personas.org_a.pk}/{rel(run, 'kept.txt')}"]
    assert uploads(personas.org_a).count() == 1


# -- path safety --------------------------------------------------------------------------

def raw_request(live_server, method, target, body=b"", headers=None):
    """Send `target` byte for byte: requests/urllib3 would normalise dot segments first."""
    url = urlparse(live_server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def raw_exchange(live_server, request: bytes) -> bytes:
    """Send a whole request, stop sending, and read the answer until the server closes."""
    url = urlparse(live_server.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
def test_traversal_attempts_get_400_and_write_nothing(live_server, personas, run, artifact_root,
                                                      method):
    exp = run.experiment.public_id
    targets = [
        f"{PROXY}/{exp}/../../escape.txt",
        f"{PROXY}/{exp}/%2e%2e/%2e%2e/escape.txt",
        f"{PROXY}/{exp}/%2E%2E/escape.txt",
        f"{PROXY}/%2e%2e/escape.txt",
        f"{PROXY}/{exp}/a%2f..%2f..%2fescape.txt",
        f"{PROXY}/{exp}/%252e%252e/escape.txt",
        f"{PROXY}/{exp}/a%252fb.txt",
        f"{PROXY}/{exp}/a%5cb.txt",
        f"{PROXY}/{exp}/a\\..\\b.txt",
        f"{PROXY}/{exp}/a%00b.txt",
        f"{PROXY}//etc/passwd",
        f"{PROXY}/{exp}//x.txt",
        f"{PROXY}/{exp}/./x.txt",
        f"{PROXY}/C:/x.txt",
        f"{PROXY}?path={exp}/../..",
        f"{PROXY}?path=/etc",
        f"{PROXY}?path={exp}%2F..%2F..",
    ]
    if method != "GET":
        targets = [t for t in targets if "?" not in t]
    for target in targets:
        status, body = raw_request(live_server, method, target, b"payload",
                                   bearer(personas.alice))
        assert status == 400, (target, body)
        assert b'"INVALID_PARAMETER_VALUE"' in body, (target, body)
    assert files_under(artifact_root) == []
    assert not AuditEvent.objects.filter(action__startswith="artifact.").exists()


def test_an_encoded_separator_in_the_raw_request_line_is_refused(personas, run):
    # gunicorn passes the undecoded request line as RAW_URI; the dev server does not.
    path = rel(run, "a%2Fb.txt")
    request = RequestFactory().put(f"{PROXY}/{rel(run, 'a/b.txt')}", data=b"x",
                                   content_type="application/octet-stream",
                                   HTTP_AUTHORIZATION=f"Bearer {personas.alice.raw_token}",
                                   RAW_URI=f"{PROXY}/{path}")
    response = artifacts_endpoint(request, rel(run, "a/b.txt"))
    assert response.status_code == 400
    assert uploads(personas.org_a).count() == 0


def test_writes_that_would_clash_with_the_tree_are_refused(live_server, personas, run,
                                                           artifact_root):
    base = live_server.url
    assert put(base, personas.alice, rel(run, "dir/file.txt")).status_code == 200
    assert put(base, personas.alice, rel(run, "dir")).status_code == 400  # a directory
    assert put(base, personas.alice, rel(run, "dir/file.txt/x")).status_code == 400  # under a file
    assert put(base, personas.alice, run.experiment.public_id).status_code == 400  # the root
    assert files_under(artifact_root) == [f"{personas.org_a.pk}/{rel(run, 'dir/file.txt')}"]
    assert uploads(personas.org_a).count() == 1
    assert files_under(artifact_root / ".scratch") == []


def test_an_empty_file_is_an_artifact_too(live_server, personas, run):
    base = live_server.url
    assert put(base, personas.alice, rel(run, "empty.txt"), b"").status_code == 200
    listing = requests.get(f"{base}{PROXY}", params={"path": rel(run)},
                           headers=bearer(personas.alice), timeout=30).json()
    assert listing == {"files": [{"path": "empty.txt", "is_dir": False, "file_size": 0}]}
    got = requests.get(f"{base}{PROXY}/{rel(run, 'empty.txt')}", headers=bearer(personas.alice),
                       timeout=30)
    assert got.status_code == 200 and got.content == b""
    assert uploads(personas.org_a).get().after["sha256"] == hashlib.sha256(b"").hexdigest()


# -- audit --------------------------------------------------------------------------------

def test_every_put_and_delete_leaves_exactly_one_audit_event(live_server, personas, run):
    base = live_server.url
    put(base, personas.alice, rel(run, "a.txt"), b"first")
    put(base, personas.alice, rel(run, "a.txt"), b"second version")
    put(base, personas.alice, rel(run, "d/b.txt"), b"b")
    events = list(uploads(personas.org_a))
    assert [e.after for e in events] == [
        {"path": rel(run, "a.txt"), "size": 5, "sha256": hashlib.sha256(b"first").hexdigest()},
        {"path": rel(run, "a.txt"), "size": 14,
         "sha256": hashlib.sha256(b"second version").hexdigest()},
        {"path": rel(run, "d/b.txt"), "size": 1, "sha256": hashlib.sha256(b"b").hexdigest()},
    ]
    assert {(e.target_type, e.target_id) for e in events} == {("run", str(run.pk))}
    assert events[0].actor_token_id == personas.alice.token.pk
    deleted = requests.delete(f"{base}{PROXY}/{rel(run, 'd')}", headers=bearer(personas.alice),
                              timeout=30)
    assert deleted.status_code == 200 and deleted.json() == {}
    deletions = AuditEvent.objects.filter(org=personas.org_a, action="artifact.deleted")
    assert [e.before for e in deletions] == [
        {"path": rel(run, "d"), "is_dir": True, "files": 1, "size": 1}]
    assert requests.get(f"{base}{PROXY}", params={"path": rel(run)},
                        headers=bearer(personas.alice), timeout=30).json()["files"] == [
        {"path": "a.txt", "is_dir": False, "file_size": 14}]


def test_a_logged_models_files_are_audited_against_the_model(personas, run):
    model = LoggedModel.objects.create(
        org=personas.org_a, experiment=run.experiment, model_id="m-0123456789abcdef",
        name="model", creation_timestamp=0, last_updated_timestamp=0,
        artifact_uri=f"mlflow-artifacts:/{run.experiment.public_id}/models/m-0123456789abcdef"
                     "/artifacts")
    path = f"{run.experiment.public_id}/models/{model.model_id}/artifacts/MLmodel"
    artifact_upload(org=personas.org_a, path=path, stream=io.BytesIO(b"flavors: {}"),
                    length=11, actor=TESTER)
    event = uploads(personas.org_a).get()
    assert (event.target_type, event.target_id, event.target_label) == (
        "loggedmodel", str(model.pk), path)


def test_a_failed_audit_write_leaves_storage_as_it_was(personas, run, artifact_root,
                                                       monkeypatch):
    org, storage = personas.org_a, storages["artifacts"]
    artifact_upload(org=org, path=rel(run, "kept.txt"), stream=io.BytesIO(b"old"), length=3,
                    actor=TESTER)

    def broken(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(artifact_services, "audit_record", broken)
    for path in ("kept.txt", "new.txt"):
        with pytest.raises(RuntimeError):
            artifact_upload(org=org, path=rel(run, path), stream=io.BytesIO(b"new!"), length=4,
                            actor=TESTER)
    with pytest.raises(RuntimeError):
        artifact_delete(org=org, path=rel(run, "kept.txt"), actor=TESTER)
    with pytest.raises(RuntimeError):
        artifact_delete(org=org, path=rel(run), actor=TESTER)
    assert files_under(artifact_root) == [f"{org.pk}/{rel(run, 'kept.txt')}"]
    with storage.open(f"{org.pk}/{rel(run, 'kept.txt')}") as kept:
        assert kept.read() == b"old"


def test_a_truncated_upload_is_refused_and_leaves_nothing(live_server, personas, run,
                                                          artifact_root):
    answer = raw_exchange(live_server, (
        f"PUT {PROXY}/{rel(run, 'partial.bin')} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {personas.alice.raw_token}\r\n"
        "Content-Length: 100000\r\nConnection: close\r\n\r\nonly a little").encode())
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"13 of 100000 bytes" in answer
    assert files_under(artifact_root) == []
    assert uploads(personas.org_a).count() == 0


def test_a_chunked_body_needs_a_server_that_delimits_it(live_server, personas, run):
    # requests (so the mlflow client) sends an empty file chunked; Django's development
    # server cannot de-chunk, so it is refused and the connection closed (the unread body
    # must not be parsed as the next request).
    answer = raw_exchange(live_server, (
        f"PUT {PROXY}/{rel(run, 'c.txt')} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {personas.alice.raw_token}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n9\r\nchunk one\r\n0\r\n\r\n").encode())
    assert answer.startswith(b"HTTP/1.1 400") and b"Content-Length header" in answer
    assert b"\r\nConnection: close\r\n" in answer
    # Under gunicorn (wsgi.input_terminated) the de-chunked stream is read to its end.
    request = RequestFactory().put(f"{PROXY}/{rel(run, 'c.txt')}", data=b"",
                                   content_type="application/octet-stream",
                                   HTTP_AUTHORIZATION=f"Bearer {personas.alice.raw_token}",
                                   HTTP_TRANSFER_ENCODING="chunked")
    request.META.pop("CONTENT_LENGTH", None)
    request.META["wsgi.input"] = io.BytesIO(b"chunk one chunk two")
    request.META["wsgi.input_terminated"] = True
    assert artifacts_endpoint(request, rel(run, "c.txt")).status_code == 200
    assert uploads(personas.org_a).get().after["size"] == 19


# -- streaming ----------------------------------------------------------------------------

def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1))


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_a_200_mb_artifact_streams_through_without_being_held_in_memory(
        live_server, personas, run, tmp_path):
    size, block = 200 * 1024 * 1024, os.urandom(1024 * 1024)
    source, digest = tmp_path / "big.bin", hashlib.sha256()
    with source.open("wb") as handle:
        for i in range(size // len(block)):
            chunk = block[i % 7:] + block[:i % 7]  # no two neighbouring blocks alike
            handle.write(chunk)
            digest.update(chunk)
    path = rel(run, "big.bin")
    # The live server runs in this process, so its memory is ours: reset the peak and watch it.
    _reset_peak_rss()
    baseline = _status_kib("VmRSS")
    with source.open("rb") as body:
        response = requests.put(f"{live_server.url}{PROXY}/{path}", data=body,
                                headers=bearer(personas.alice), timeout=300)
    assert response.status_code == 200, response.text
    upload_growth = _status_kib("VmHWM") - baseline
    event = uploads(personas.org_a).get()
    assert event.after == {"path": path, "size": size, "sha256": digest.hexdigest()}

    _reset_peak_rss()
    baseline, received = _status_kib("VmRSS"), hashlib.sha256()
    with requests.get(f"{live_server.url}{PROXY}/{path}", headers=bearer(personas.alice),
                      stream=True, timeout=300) as download:
        assert download.status_code == 200
        for chunk in download.iter_content(1024 * 1024):
            received.update(chunk)
    download_growth = _status_kib("VmHWM") - baseline
    assert received.hexdigest() == digest.hexdigest()
    # A 200 MB body held anywhere would show as ~200000 kB; streaming needs a few MB.
    assert upload_growth < 40_000, f"peak RSS grew by {upload_growth} kB during the upload"
    assert download_growth < 40_000, f"peak RSS grew by {download_growth} kB during the download"


# -- under gunicorn, the production server ------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn_url(worker_env, tmp_path):
    """gunicorn (as `make run` starts it) on the test database, artifacts in tmp_path."""
    port, root = _free_port(), Path(__file__).resolve().parents[2]
    env = {**worker_env, "LEDGERFLOW_ARTIFACT_ROOT": str(tmp_path / "gunicorn-artifacts")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--worker-class", "gthread", "--workers", "1", "--threads", "2",
         "--log-level", "warning"], cwd=root, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not answer /health")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_under_gunicorn_the_client_logs_empty_files_sent_chunked(gunicorn_url, personas, run,
                                                                 mlflow_as, tmp_path):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    mlflow_as(personas.alice)
    repo = get_artifact_repository(run.artifact_uri, tracking_uri=gunicorn_url)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "full.txt").write_bytes(b"x" * 70_000)
    repo.log_artifact(str(tmp_path / "empty.txt"))
    repo.log_artifact(str(tmp_path / "full.txt"))
    assert [(f.path, f.file_size) for f in repo.list_artifacts()] == [
        ("empty.txt", 0), ("full.txt", 70_000)]
    assert [e.after["size"] for e in uploads(personas.org_a)] == [0, 70_000]
