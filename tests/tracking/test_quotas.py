"""Request body limits and per-organization artifact quotas (issue 23, item 5).

The real mlflow client (and raw HTTP where the client cannot show it) against the live server:
past LEDGERFLOW_MAX_REQUEST_BYTES, LEDGERFLOW_MAX_ARTIFACT_BYTES or an organization's artifact
quota the answer is 413 with MLflow's RESOURCE_EXHAUSTED (the native API's `request_too_large`),
before the body is read where its Content-Length shows it; nothing is written, no file is left,
the count of what the organization keeps is unchanged, and other organizations go on as before.
"""

import io
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import orjson
import pytest
import requests
from django.conf import settings
from django.test import RequestFactory
from mlflow.entities import Param
from mlflow.exceptions import MlflowException

from audit.actors import Actor
from audit.models import AuditEvent
from tenancy.models import ApiToken, Organization
from tests.tenancy import test_admin as admin_tests
from tests.tracking import test_artifacts as artifact_tests
from tests.tracking.test_artifacts import PROXY, bearer, files_under, make_experiment, make_run, rel
from tracking import artifacts as artifact_services
from tracking.artifacts import (
    CHUNK_SIZE,
    SCRATCH,
    artifact_delete,
    artifact_quota_set,
    artifact_upload,
    artifact_usage_recount,
)
from tracking.mlflow_api.artifacts import artifacts_endpoint
from tracking.models import Run

TESTER = Actor.command("test")
MIDDLEWARE = "config.limits.RequestBodyLimitMiddleware"
QUOTA = 100_000

# Fixtures of the artifact and admin tests: a tmp artifact store for every test (autouse), the
# client's own artifact repository, a superuser's admin session.
artifact_root = artifact_tests.artifact_root
mlflow_repo = artifact_tests.mlflow_repo
root, admin_client = admin_tests.root, admin_tests.admin_client
assert_admin_event = admin_tests.assert_admin_event


@pytest.fixture
def run(personas) -> Run:
    return make_run(make_experiment(personas.org_a))


@pytest.fixture
def run_b(personas) -> Run:
    return make_run(make_experiment(personas.org_b))


def used(org) -> int:
    return Organization.objects.get(pk=org.pk).artifact_bytes


def uploads(org) -> int:
    return AuditEvent.objects.filter(org=org, action="artifact.uploaded").count()


def stored(store: Path, org) -> list[str]:
    return files_under(store / str(org.pk))


def leftovers(store: Path) -> list[str]:
    return files_under(store / SCRATCH)


def a_file(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / name
    path.write_bytes(b"x" * size)
    return path


def refused(call) -> requests.Response:
    """The mlflow client's artifact upload, refused: the HTTP answer it raised on."""
    with pytest.raises(requests.HTTPError) as caught:
        call()
    return caught.value.response


def assert_exhausted(response, *needles: str) -> dict:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["error_code"] == "RESOURCE_EXHAUSTED"
    for needle in needles:
        assert needle in body["message"], body["message"]
    return body


def head_only(live_server, head: str, *, body: bytes = b"") -> tuple[int, bytes]:
    """Send a request's head (and `body`, maybe less than its Content-Length says) and read the
    answer without sending the rest: it must come before the body is read."""
    url = urlparse(live_server.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        headers, _, rest = answer.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in headers.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(rest) < length:
            rest += sock.recv(65536)
    return int(headers.split(b" ")[1]), rest


def put_head(persona, path: str, length: int) -> str:
    return (f"PUT {PROXY}/{path} HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {persona.raw_token}\r\n"
            f"Content-Length: {length}\r\n\r\n")


# -- the organization's artifact quota ----------------------------------------------------

def test_without_a_quota_an_organization_uploads_past_any_size(live_server, personas, run,
                                                              mlflow_repo, tmp_path,
                                                              artifact_root):
    # The defence off (the default: no quota) - the same uploads as below all go through.
    assert settings.LEDGERFLOW_ORG_ARTIFACT_QUOTA_BYTES == 0
    repo = mlflow_repo(personas.alice, run.artifact_uri)
    for name in ("one.bin", "two.bin", "three.bin"):
        repo.log_artifact(str(a_file(tmp_path, name, 60_000)))
    assert used(personas.org_a) == 180_000 > QUOTA
    assert len(stored(artifact_root, personas.org_a)) == 3


def test_an_upload_past_the_quota_is_refused_with_413_and_leaves_nothing(
        live_server, personas, run, run_b, mlflow_repo, tmp_path, artifact_root):
    org_a, org_b = personas.org_a, personas.org_b
    artifact_quota_set(org=org_a, quota_bytes=QUOTA, actor=TESTER)
    repo = mlflow_repo(personas.alice, run.artifact_uri)
    repo.log_artifact(str(a_file(tmp_path, "one.bin", 60_000)))
    assert used(org_a) == 60_000

    answer = refused(lambda: repo.log_artifact(str(a_file(tmp_path, "two.bin", 60_000))))
    assert_exhausted(answer, "Artifact quota exceeded", "'org-a'", f"uses 60000 of its {QUOTA}",
                     "needs 60000 more bytes")
    assert stored(artifact_root, org_a) == [rel(run, "one.bin")]
    assert leftovers(artifact_root) == []
    assert used(org_a) == 60_000
    assert uploads(org_a) == 1
    assert [f.path for f in repo.list_artifacts()] == ["one.bin"]
    # What still fits goes through.
    repo.log_artifact(str(a_file(tmp_path, "three.bin", QUOTA - 60_000)))
    assert used(org_a) == QUOTA

    # Organization B has no quota and its own count: it is not affected.
    repo_b = mlflow_repo(personas.charlie, run_b.artifact_uri)
    repo_b.log_artifact(str(a_file(tmp_path, "big.bin", 3 * QUOTA)))
    assert (used(org_a), used(org_b)) == (QUOTA, 3 * QUOTA)
    assert stored(artifact_root, org_b) == [rel(run_b, "big.bin")]


def test_a_quota_refusal_comes_before_the_body_is_read(live_server, personas, run,
                                                       artifact_root):
    artifact_quota_set(org=personas.org_a, quota_bytes=QUOTA, actor=TESTER)
    # 50 MB announced, 10 bytes sent: the answer cannot wait for the rest.
    status, body = head_only(live_server, put_head(personas.alice, rel(run, "big.bin"),
                                                   50_000_000), body=b"0123456789")
    assert status == 413
    assert orjson.loads(body)["error_code"] == "RESOURCE_EXHAUSTED"
    assert files_under(artifact_root) == []
    assert used(personas.org_a) == 0


def test_an_overwrite_counts_the_difference_and_a_delete_gives_bytes_back(
        live_server, personas, run, mlflow_repo, tmp_path, artifact_root):
    org = personas.org_a
    artifact_quota_set(org=org, quota_bytes=QUOTA, actor=TESTER)
    repo = mlflow_repo(personas.alice, run.artifact_uri)
    repo.log_artifact(str(a_file(tmp_path, "model.bin", 80_000)), artifact_path="m")
    repo.log_artifact(str(a_file(tmp_path, "model.bin", 95_000)), artifact_path="m")
    assert used(org) == 95_000  # 80 000 replaced, not added to
    answer = refused(lambda: repo.log_artifact(str(a_file(tmp_path, "model.bin", QUOTA + 1)),
                                               artifact_path="m"))
    assert_exhausted(answer, f"uses 95000 of its {QUOTA}", "needs 5001 more bytes")
    assert (artifact_root / str(org.pk) / rel(run, "m/model.bin")).stat().st_size == 95_000
    repo.log_artifact(str(a_file(tmp_path, "notes.txt", 5_000)), artifact_path="m")
    assert used(org) == QUOTA
    repo.delete_artifacts("m/notes.txt")
    assert used(org) == 95_000
    repo.delete_artifacts("m")  # a directory: all its files' bytes
    assert used(org) == 0
    repo.log_artifact(str(a_file(tmp_path, "again.bin", QUOTA)))
    assert used(org) == QUOTA


def test_a_chunked_upload_is_stopped_at_the_quota_as_it_streams(personas, run, artifact_root):
    # Under gunicorn a chunked body has no Content-Length: it is counted while it is read.
    artifact_quota_set(org=personas.org_a, quota_bytes=QUOTA, actor=TESTER)
    body = io.BytesIO(b"y" * (20 * CHUNK_SIZE))
    request = RequestFactory().put(f"{PROXY}/{rel(run, 'c.bin')}", data=b"",
                                   content_type="application/octet-stream",
                                   HTTP_AUTHORIZATION=f"Bearer {personas.alice.raw_token}",
                                   HTTP_TRANSFER_ENCODING="chunked")
    request.META.pop("CONTENT_LENGTH", None)
    request.META["wsgi.input"] = body
    request.META["wsgi.input_terminated"] = True
    response = artifacts_endpoint(request, rel(run, "c.bin"))
    assert response.status_code == 413
    message = orjson.loads(response.content)["message"]
    assert f"more than the {QUOTA} bytes left" in message
    assert body.tell() <= CHUNK_SIZE  # stopped at the first chunk past the quota, not read on
    assert files_under(artifact_root) == []
    assert (used(personas.org_a), uploads(personas.org_a)) == (0, 0)


def test_a_file_past_the_per_file_limit_is_refused_before_its_body_is_read(
        live_server, personas, run, mlflow_repo, settings, tmp_path, artifact_root):
    settings.LEDGERFLOW_MAX_ARTIFACT_BYTES = 50_000  # no quota: the limit per file alone
    status, body = head_only(live_server, put_head(personas.alice, rel(run, "w.bin"),
                                                   1_000_000), body=b"0123456789")
    assert status == 413
    assert "1000000 bytes; this server accepts at most 50000 bytes per file" in \
        orjson.loads(body)["message"]
    repo = mlflow_repo(personas.alice, run.artifact_uri)
    assert_exhausted(refused(lambda: repo.log_artifact(str(a_file(tmp_path, "w.bin", 50_001)))),
                     "50001 bytes", "at most 50000 bytes per file")
    repo.log_artifact(str(a_file(tmp_path, "ok.bin", 50_000)))
    assert stored(artifact_root, personas.org_a) == [rel(run, "ok.bin")]
    assert used(personas.org_a) == 50_000


@pytest.mark.postgres_only
def test_parallel_uploads_cannot_together_pass_the_quota(live_server, personas, run,
                                                         artifact_root, monkeypatch):
    """Six uploads of 30 000 bytes against a quota of 100 000, all admitted by the check
    before their bodies (nothing was used yet), then completed at once: three fit."""
    org, size, count = personas.org_a, 30_000, 6
    artifact_quota_set(org=org, quota_bytes=QUOTA, actor=TESTER)
    admitted, all_admitted = [], threading.Event()
    room_of = artifact_services._Room.of.__func__

    def counting(cls, org, replaced):
        room = room_of(cls, org, replaced)
        admitted.append(room)
        if len(admitted) == count:
            all_admitted.set()
        return room

    monkeypatch.setattr(artifact_services._Room, "of", classmethod(counting))
    url = urlparse(live_server.url)
    sockets = []
    for i in range(count):
        sock = socket.create_connection((url.hostname, url.port), timeout=60)
        sock.sendall(put_head(personas.alice, rel(run, f"p{i}.bin"), size).encode() + b"z" * 100)
        sockets.append(sock)
    assert all_admitted.wait(30), f"only {len(admitted)} uploads reached the server"
    assert all(room.used == 0 for room in admitted)
    statuses = []

    def finish(sock):
        sock.sendall(b"z" * (size - 100))
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        statuses.append(int(answer.split(b" ")[1]))
        sock.close()

    threads = [threading.Thread(target=finish, args=(sock,)) for sock in sockets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] * 3 + [413] * 3
    assert used(org) == 3 * size <= QUOTA
    assert len(stored(artifact_root, org)) == 3
    assert leftovers(artifact_root) == []
    assert uploads(org) == 3


def test_the_service_counts_uploads_and_deletes_and_a_recount_agrees(personas, run,
                                                                     artifact_root):
    org = personas.org_a
    for name, size in (("a.txt", 10), ("d/b.txt", 20), ("d/c.txt", 30)):
        artifact_upload(org=org, path=rel(run, name), stream=io.BytesIO(b"x" * size),
                        length=size, actor=TESTER)
    assert used(org) == 60
    artifact_delete(org=org, path=rel(run, "d"), actor=TESTER)
    assert used(org) == 10
    # Files the count never saw (stored before the upgrade that began counting, say).
    old = artifact_root / str(org.pk) / rel(run, "old.bin")
    old.write_bytes(b"o" * 1000)
    assert artifact_usage_recount(org=org, actor=TESTER) == 1010
    assert used(org) == 1010
    event = AuditEvent.objects.filter(org=org).latest("seq")
    assert (event.action, event.before, event.after) == (
        "organization.artifact_usage_recounted", {"artifact_bytes": 10}, {"artifact_bytes": 1010})
    # Deleting files the count never saw does not take it below 0.
    (old.parent / "uncounted.bin").write_bytes(b"u" * 500)
    artifact_delete(org=org, path=rel(run), actor=TESTER)
    assert used(org) == 0


def test_the_servers_default_quota_applies_unless_the_organization_has_its_own(
        personas, run, settings, artifact_root):
    org = personas.org_a
    settings.LEDGERFLOW_ORG_ARTIFACT_QUOTA_BYTES = 100

    def upload(name, size):
        artifact_upload(org=org, path=rel(run, name), stream=io.BytesIO(b"x" * size),
                        length=size, actor=TESTER)

    upload("a", 100)
    with pytest.raises(artifact_services.ResourceExhausted, match="uses 100 of its 100 bytes"):
        upload("b", 1)
    artifact_quota_set(org=org, quota_bytes=0, actor=TESTER)  # this organization: none
    upload("b", 1000)
    artifact_quota_set(org=org, quota_bytes=None, actor=TESTER)  # the default again
    with pytest.raises(artifact_services.ResourceExhausted):
        upload("c", 1)
    assert used(org) == 1100
    assert files_under(artifact_root / str(org.pk)) == [rel(run, "a"), rel(run, "b")]


# -- the request body limit ---------------------------------------------------------------

def test_the_body_limit_middleware_comes_before_anything_that_reads_the_body():
    middleware = settings.MIDDLEWARE
    assert MIDDLEWARE in middleware, "add config.limits.RequestBodyLimitMiddleware to MIDDLEWARE"
    assert middleware.index(MIDDLEWARE) < middleware.index(
        "django.middleware.csrf.CsrfViewMiddleware")


@pytest.fixture
def small_bodies(settings):
    settings.LEDGERFLOW_MAX_REQUEST_BYTES = 10_000
    return 10_000


def test_a_body_over_the_request_limit_gets_413_before_it_is_read(
        live_server, personas, run, mlflow_as, small_bodies, api):
    alice = personas.alice
    tokens, events = ApiToken.objects.count(), AuditEvent.objects.count()
    # The MLflow protocol, through the real client: 100 parameters of 500 characters.
    client = mlflow_as(alice)
    params = [Param(f"p{i}", "v" * 500) for i in range(100)]
    with pytest.raises(MlflowException) as caught:
        client.log_batch(run.run_uuid, params=params)
    assert caught.value.error_code == "RESOURCE_EXHAUSTED"
    assert "larger than this server accepts here (10000 bytes)" in caught.value.message
    assert client.get_run(run.run_uuid).data.params == {}
    # What the client saw: 413, and it comes although the body is never sent.
    head = (f"POST /api/2.0/mlflow/runs/log-batch HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {alice.raw_token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {small_bodies + 1}\r\n\r\n")
    status, body = head_only(live_server, head)
    assert status == 413 and orjson.loads(body)["error_code"] == "RESOURCE_EXHAUSTED"
    # The native API: the same limit, in its own error format.
    response = requests.post(f"{live_server.url}/api/v1/tokens/", json={"name": "n" * 20_000},
                             headers=bearer(alice), timeout=30)
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    head = (f"POST /api/v1/tokens/ HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {alice.raw_token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 50000000\r\n\r\n")
    assert head_only(live_server, head)[0] == 413
    assert (ApiToken.objects.count(), AuditEvent.objects.count()) == (tokens, events)
    # Within the limit, both work.
    client.log_batch(run.run_uuid, params=params[:10])
    assert api(alice).post("/api/v1/tokens/", {"name": "small"}, format="json").status_code == 201


def test_artifact_uploads_are_not_held_to_the_request_limit(live_server, personas, run,
                                                            mlflow_repo, small_bodies, tmp_path):
    # A file is as large as LEDGERFLOW_MAX_ARTIFACT_BYTES allows, not the JSON bodies' limit.
    repo = mlflow_repo(personas.alice, run.artifact_uri)
    repo.log_artifact(str(a_file(tmp_path, "model.bin", 5 * small_bodies)))
    assert used(personas.org_a) == 5 * small_bodies


def test_without_the_limit_a_large_body_goes_through(live_server, personas, run, mlflow_as,
                                                     settings):
    # The defence off (0): the same batch as above is taken.
    settings.LEDGERFLOW_MAX_REQUEST_BYTES = 0
    client = mlflow_as(personas.alice)
    client.log_batch(run.run_uuid, params=[Param(f"p{i}", "v" * 500) for i in range(100)])
    assert len(client.get_run(run.run_uuid).data.params) == 100


# -- the organization's admin page --------------------------------------------------------

def test_the_admin_page_shows_and_changes_the_quota_audited(admin_client, personas,
                                                            run, artifact_root):
    org = personas.org_a
    artifact_upload(org=org, path=rel(run, "a.bin"), stream=io.BytesIO(b"x" * 2048),
                    length=2048, actor=TESTER)
    page = admin_client.get(f"/admin/tenancy/organization/{org.pk}/change/").content.decode()
    assert 'name="artifact_quota_bytes"' in page
    assert "2.0\xa0KB (2048 bytes), no quota" in page
    seen = set(AuditEvent.objects.values_list("pk", flat=True))

    response = admin_client.post(f"/admin/tenancy/organization/{org.pk}/change/",
                                 {"name": org.name, "artifact_quota_bytes": "4096"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Organization.objects.get(pk=org.pk).artifact_quota_bytes == 4096
    [event] = AuditEvent.objects.exclude(pk__in=seen)
    assert_admin_event(event, "organization.updated", org)
    assert (event.before, event.after) == ({"artifact_quota_bytes": None},
                                           {"artifact_quota_bytes": 4096})
    page = admin_client.get(f"/admin/tenancy/organization/{org.pk}/change/").content.decode()
    assert "2048 bytes) of 4.0\xa0KB (4096 bytes, its own)" in page
    with pytest.raises(artifact_services.ResourceExhausted, match="uses 2048 of its 4096"):
        artifact_upload(org=org, path=rel(run, "b.bin"), stream=io.BytesIO(b"x" * 2049),
                        length=2049, actor=TESTER)

    # A name and the quota changed together: one event each, with what each replaced.
    seen = set(AuditEvent.objects.values_list("pk", flat=True))
    admin_client.post(f"/admin/tenancy/organization/{org.pk}/change/",
                      {"name": "Renamed", "artifact_quota_bytes": ""})
    events = list(AuditEvent.objects.exclude(pk__in=seen).order_by("seq"))
    assert [(e.action, e.before, e.after) for e in events] == [
        ("organization.updated", {"name": org.name}, {"name": "Renamed"}),
        ("organization.updated", {"artifact_quota_bytes": 4096}, {"artifact_quota_bytes": None})]
    # Saved unchanged: nothing to record.
    seen = set(AuditEvent.objects.values_list("pk", flat=True))
    admin_client.post(f"/admin/tenancy/organization/{org.pk}/change/",
                      {"name": "Renamed", "artifact_quota_bytes": ""})
    assert not AuditEvent.objects.exclude(pk__in=seen).exists()


def test_a_negative_quota_is_a_form_error_and_changes_nothing(admin_client,
                                                              personas):
    org = personas.org_a
    events = AuditEvent.objects.count()
    response = admin_client.post(f"/admin/tenancy/organization/{org.pk}/change/",
                                 {"name": org.name, "artifact_quota_bytes": "-1"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Organization.objects.get(pk=org.pk).artifact_quota_bytes is None
    assert AuditEvent.objects.count() == events


def test_the_admin_recount_action_counts_what_is_stored(admin_client, personas,
                                                        run, artifact_root):
    org = personas.org_a
    folder = artifact_root / str(org.pk) / rel(run)
    folder.mkdir(parents=True)
    (folder / "before-counting.bin").write_bytes(b"x" * 3000)
    response = admin_client.post("/admin/tenancy/organization/", {
        "action": "recount_artifact_usage", "_selected_action": [org.pk]})
    assert response.status_code == 302
    assert used(org) == 3000
    event = AuditEvent.objects.filter(org=org).latest("seq")
    assert_admin_event(event, "organization.artifact_usage_recounted", org)


def test_an_organization_added_with_a_quota_gets_it_audited(admin_client):
    response = admin_client.post("/admin/tenancy/organization/add/",
                                 {"slug": "acme", "name": "Acme", "artifact_quota_bytes": "10"})
    assert response.status_code == 302, response.content.decode()[:2000]
    org = Organization.objects.get(slug="acme")
    assert org.artifact_quota_bytes == 10 and org.artifact_bytes == 0
    assert list(AuditEvent.objects.filter(org=org).order_by("seq")
                .values_list("action", flat=True)) == ["organization.created",
                                                       "organization.updated"]
