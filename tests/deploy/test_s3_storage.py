"""Artifacts in S3 (config/storage.py) through the live server and the real mlflow client:
streamed reads, deletes, listings, and presigned download URLs when they are turned on."""

import os
from pathlib import Path

import pytest
import requests

from tests.deploy.conftest import BUCKET
from tests.tracking.conftest import _connections_closed_after_test, mlflow_as  # noqa: F401


@pytest.fixture
def s3_artifacts(settings, s3_server):
    url, client = s3_server
    settings.STORAGES = {**settings.STORAGES, "artifacts": {
        "BACKEND": "config.storage.StreamingS3Storage",
        "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": url, "region_name": "us-east-1",
                    "access_key": "test", "secret_key": "test", "default_acl": None,
                    "location": "artifacts", "file_overwrite": True}}}
    return client


def keys(client) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_artifacts_stream_through_s3_and_can_be_presigned(s3_artifacts, mlflow_as,  # noqa: F811
                                                          personas, live_server, settings,
                                                          tmp_path):
    client = mlflow_as(personas.alice)
    run = client.create_run("0")
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several of the server's 1 MB chunks
    (tmp_path / "notes.txt").write_text("in the bucket\n")
    client.log_artifact(run.info.run_id, str(big), "model")
    client.log_artifact(run.info.run_id, str(tmp_path / "notes.txt"))

    org = personas.org_a.pk
    stored = keys(s3_artifacts)
    assert f"artifacts/{org}/0/{run.info.run_id}/artifacts/model/weights.bin" in stored
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["model", "notes.txt"]
    assert client.list_artifacts(run.info.run_id, "model")[0].file_size == big.stat().st_size

    got = client.download_artifacts(run.info.run_id, "model/weights.bin", str(tmp_path / "a"))
    assert Path(got).read_bytes() == big.read_bytes()

    # Presigned: the server answers with a redirect to the object; the client follows it.
    settings.LEDGERFLOW_S3_PRESIGNED_DOWNLOADS = True
    path = f"0/{run.info.run_id}/artifacts/notes.txt"
    headers = {"Authorization": f"Bearer {personas.alice.raw_token}"}
    answer = requests.get(f"{live_server.url}/api/2.0/mlflow-artifacts/artifacts/{path}",
                          headers=headers, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(s3_artifacts.meta.endpoint_url)
    assert "Signature" in answer.headers["Location"]
    got = client.download_artifacts(run.info.run_id, "notes.txt", str(tmp_path / "b"))
    assert Path(got).read_text() == "in the bucket\n"
    # another organization's path is still missing, not redirected
    other = requests.get(f"{live_server.url}/api/2.0/mlflow-artifacts/artifacts/{path}",
                         headers={"Authorization": f"Bearer {personas.charlie.raw_token}"},
                         allow_redirects=False, timeout=10)
    assert other.status_code == 404

    client.delete_run(run.info.run_id)  # artifacts stay with a deleted run, as in MLflow
    answer = requests.delete(
        f"{live_server.url}/api/2.0/mlflow-artifacts/artifacts/0/{run.info.run_id}/artifacts/model",
        headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert not any("/model/" in key for key in keys(s3_artifacts))
