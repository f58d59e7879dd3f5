"""The kubernetes backend without a cluster: the objects it builds, validated against the
Kubernetes API schema (kubernetes-validate's bundled JSON schemas, strict: an unknown field
fails) and read back by the official client; their security properties field by field; and the
Job's lifecycle against a fake API that records what the backend asks of the cluster."""

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
import pytest
from kubernetes import client

from config.sandbox import kubernetes as k8s
from config.sandbox.kubernetes import KubernetesBackend, job_objects, k8s_name, result_of_job
from config.sandbox.spec import (
    ENV_MOUNT,
    WORKSPACE,
    Limits,
    Mount,
    Network,
    Relay,
    SandboxUnavailable,
    Spec,
    Usage,
)

SCHEMA_VERSIONS = ("1.29", kubernetes_validate.latest_version())
OPTIONS = {"namespace": "ledgerflow-jobs", "image": "python:3.11-slim",
           "tracking_url": "http://ledgerflow-web.ledgerflow.svc:8000",
           "tracking_selector": "app.kubernetes.io/name=ledgerflow-web", "tracking_port": 8000}
TOKEN = "lf-run-token-secret"
# Pod Security Standards, "restricted": the volume types it allows
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def make_spec(tmp_path: Path, **overrides) -> Spec:
    fields = {"argv": ["python", "train.py", "--epochs", "3"], "workspace": tmp_path,
              "stdout": tmp_path / "out", "stderr": tmp_path / "err", "name": "run_7f3A.attempt-1",
              "image": "registry.example.org/team/project:abc123", "env": {"MLFLOW_RUN_ID": "7f3a"},
              "network": Network.TRACKING, "relay": Relay(upstream="http://127.0.0.1:8000", token=TOKEN),
              "limits": Limits(wall_seconds=900, memory_bytes=2 << 30, disk_bytes=4 << 30,
                               tmp_bytes=256 << 20)}
    return Spec(**{**fields, **overrides})


def serialized(tmp_path, **overrides) -> tuple[dict | None, dict, dict]:
    objects = job_objects(make_spec(tmp_path, **overrides), **OPTIONS)
    api = client.ApiClient()
    return tuple(None if o is None else api.sanitize_for_serialization(o) for o in objects)


def pod_of(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


@pytest.mark.parametrize("network", [Network.TRACKING, Network.NONE])
@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_the_objects_are_valid_against_the_api_schema(tmp_path, network, version):
    for obj in filter(None, serialized(tmp_path, network=network)):
        assert kubernetes_validate.validate(obj, version, strict=True)


def test_the_validator_is_not_vacuous(tmp_path):
    _, job, _ = serialized(tmp_path)
    pod_of(job)["containers"][0]["securityContext"]["runAsNonroot"] = True  # misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, SCHEMA_VERSIONS[-1], strict=True)
    _, job, _ = serialized(tmp_path)
    job["spec"]["backoffLimit"] = "none"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, SCHEMA_VERSIONS[-1], strict=True)


@pytest.mark.parametrize(("index", "kind"), [(0, "V1Secret"), (1, "V1Job"), (2, "V1NetworkPolicy")])
def test_the_client_reads_the_objects_back_unchanged(tmp_path, index, kind):
    """The client's deserializer maps JSON names to its fields: a wrong name would be lost."""
    api = client.ApiClient()
    data = serialized(tmp_path)[index]
    again = api.deserialize(json.dumps(data), kind, "application/json")
    assert type(again).__name__ == kind
    assert api.sanitize_for_serialization(again) == data


def test_the_pod_runs_unprivileged(tmp_path):
    _, job, _ = serialized(tmp_path)
    pod = pod_of(job)
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                      "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
    [container] = pod["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert pod[host] is False
    assert "initContainers" not in pod and "ephemeralContainers" not in pod
    assert not any("hostPort" in port for port in container.get("ports", []))


def test_it_meets_the_restricted_pod_security_standard(tmp_path):
    _, job, _ = serialized(tmp_path)
    pod = pod_of(job)
    for volume in pod["volumes"]:
        assert set(volume) - {"name"} <= RESTRICTED_VOLUMES  # no hostPath, no nfs...
    for container in pod["containers"]:
        added = container["securityContext"]["capabilities"].get("add", [])
        assert set(added) <= {"NET_BIND_SERVICE"}
        assert container["securityContext"].get("runAsUser", 1000) != 0
    assert pod["securityContext"]["runAsUser"] != 0


def test_the_job_has_limits_a_deadline_and_no_retry(tmp_path):
    _, job, _ = serialized(tmp_path)
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 900
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    pod = pod_of(job)
    assert pod["restartPolicy"] == "Never"
    resources = pod["containers"][0]["resources"]
    expected = {"memory": str(2 << 30), "cpu": "1", "ephemeral-storage": str(4 << 30)}
    assert resources["limits"] == resources["requests"] == expected
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["workspace"]["emptyDir"] == {"sizeLimit": str(4 << 30)}
    assert volumes["tmp"]["emptyDir"] == {"medium": "Memory", "sizeLimit": str(256 << 20)}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts == {WORKSPACE: "workspace", "/tmp": "tmp"}


def test_the_command_runs_as_given_in_the_projects_image(tmp_path):
    _, job, _ = serialized(tmp_path)
    [container] = pod_of(job)["containers"]
    assert container["image"] == "registry.example.org/team/project:abc123"
    assert container["command"] == ["python", "train.py", "--epochs", "3"]
    assert "workingDir" not in container  # the image's WORKDIR, where the project is
    _, job, _ = serialized(tmp_path, cwd="/srv/project", image="")
    [container] = pod_of(job)["containers"]
    assert (container["workingDir"], container["image"]) == ("/srv/project", "python:3.11-slim")


def test_the_token_is_only_in_the_secret_and_no_worker_variable_is_in_the_pod(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "django-secret")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@db/ledgerflow")
    secret, job, _ = serialized(tmp_path)
    assert secret["stringData"] == {"token": TOKEN} and secret["immutable"] is True
    assert TOKEN not in json.dumps(job)
    env = {e["name"]: e for e in pod_of(job)["containers"][0]["env"]}
    assert env["MLFLOW_TRACKING_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": secret["metadata"]["name"], "key": "token"}}
    assert env["MLFLOW_TRACKING_URI"]["value"] == OPTIONS["tracking_url"]
    assert env["MLFLOW_RUN_ID"]["value"] == "7f3a"
    assert not {"SECRET_KEY", "DATABASE_URL", "PATH"} & set(env)
    assert "django-secret" not in json.dumps(job)


def test_the_network_policy_allows_only_tracking_and_dns(tmp_path):
    _, job, policy = serialized(tmp_path)
    spec = policy["spec"]
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert spec["podSelector"]["matchLabels"] == {k8s.JOB_LABEL: job["metadata"]["name"]}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec.get("ingress", []) == []
    tracking, dns = spec["egress"]
    assert tracking == {"to": [{"podSelector": {"matchLabels": {
                            "app.kubernetes.io/name": "ledgerflow-web"}}}],
                        "ports": [{"protocol": "TCP", "port": 8000}]}
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {
                              "kubernetes.io/metadata.name": "kube-system"}},
                          "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]
    for rule in spec["egress"]:  # every rule names its peers: none is open to all
        assert rule["to"] and all(peer.get("podSelector", {}).get("matchLabels") for peer in rule["to"])
        assert not any("ipBlock" in peer for peer in rule["to"])


def test_tracking_in_another_namespace_is_selected_by_namespace_too(tmp_path):
    objects = job_objects(make_spec(tmp_path), **OPTIONS, tracking_namespace="ledgerflow")
    policy = client.ApiClient().sanitize_for_serialization(objects[2])
    assert policy["spec"]["egress"][0]["to"] == [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ledgerflow"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ledgerflow-web"}}}]


def test_a_job_without_tracking_reaches_nothing_and_gets_no_token(tmp_path):
    secret, job, policy = serialized(tmp_path, network=Network.NONE, relay=None)
    assert secret is None
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == [] and policy["spec"]["ingress"] == []
    names = {e["name"] for e in pod_of(job)["containers"][0]["env"]}
    assert not {"MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_URI"} & names


@pytest.mark.parametrize("overrides", [
    {"mounts": (Mount(Path("/srv/envs/abc"), ENV_MOUNT),)},
    {"writable_mounts": (Mount(Path("/srv/envs/abc"), ENV_MOUNT),)},
    {"network": Network.EGRESS, "relay": None},
])
def test_it_refuses_host_mounts_and_egress(tmp_path, overrides):
    with pytest.raises(SandboxUnavailable, match="image"):
        job_objects(make_spec(tmp_path, **overrides), **OPTIONS)


@pytest.mark.parametrize("selector", ["", "app in (web)", "!app", "app!=web", "app"])
def test_it_refuses_a_tracking_selector_it_cannot_express(tmp_path, selector):
    with pytest.raises(ValueError, match="selector"):
        job_objects(make_spec(tmp_path), **{**OPTIONS, "tracking_selector": selector})


@pytest.mark.parametrize("name", ["run_7f3A.attempt-1", "x" * 80, "ok-name", "-Lead-"])
def test_names_are_dns_labels(name):
    made = k8s_name(name)
    assert len(made) <= 52 and made[0].isalnum() and made[-1].isalnum()
    assert set(made) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    assert k8s_name(name.upper() + "!") != made


def test_check_says_no_cluster_is_configured(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(SandboxUnavailable, match=r"needs a cluster.*KUBECONFIG"):
        KubernetesBackend().check()


# ---- results from the cluster's reasons

def job_with(condition: str, reason: str = "") -> client.V1Job:
    return client.V1Job(status=client.V1JobStatus(conditions=[client.V1JobCondition(
        type=condition, status="True", reason=reason or None)]))


def pod_ended(code: int, reason: str) -> client.V1Pod:
    state = client.V1ContainerState(terminated=client.V1ContainerStateTerminated(
        exit_code=code, reason=reason))
    return client.V1Pod(status=client.V1PodStatus(container_statuses=[client.V1ContainerStatus(
        name="job", image="i", image_id="", ready=False, restart_count=0, state=state)]))


def test_results_name_the_limit_the_cluster_reports():
    usage = Usage(wall_seconds=1.0)
    assert result_of_job(client.V1Job(status=client.V1JobStatus(active=1)), None, usage) is None
    assert result_of_job(job_with("Complete"), pod_ended(0, "Completed"), usage).ok
    failed = result_of_job(job_with("Failed", "BackoffLimitExceeded"), pod_ended(2, "Error"), usage)
    assert (failed.exit_code, failed.limit) == (2, "")
    oom = result_of_job(job_with("Failed", "BackoffLimitExceeded"), pod_ended(137, "OOMKilled"), usage)
    assert (oom.signal, oom.limit) == (9, "memory")
    late = result_of_job(job_with("Failed", "DeadlineExceeded"), None, usage)
    assert (late.limit, late.killed) == ("time", True)


# ---- the lifecycle against a fake API

class FakeCluster:
    """The few API calls the backend makes, recorded in order."""

    def __init__(self):
        self.calls, self.conditions, self.deleted = [], [], set()
        self.pod = client.V1Pod(metadata=client.V1ObjectMeta(name="pod-1"), status=client.V1PodStatus(
            container_statuses=[client.V1ContainerStatus(
                name="job", image="i", image_id="", ready=True, restart_count=0,
                state=client.V1ContainerState(running=client.V1ContainerStateRunning()))]))
        self.fail_job_create = False

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        handler = getattr(type(self), f"_{name}", lambda *a, **k: None)

        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return handler(self, *args, **kwargs)
        return call

    def _create_namespaced_job(self, ns, body, **_):
        if self.fail_job_create:
            raise client.ApiException(status=403, reason="Forbidden")
        return SimpleNamespace(metadata=SimpleNamespace(uid="uid-1"))

    def _read_namespaced_job_status(self, name, ns, **_):
        return client.V1Job(status=client.V1JobStatus(conditions=self.conditions))

    def _read_namespaced_job(self, name, ns, **_):
        if "job" in self.deleted:
            raise client.ApiException(status=404, reason="Not Found")

    def _delete_namespaced_job(self, *_, **__):
        self.deleted.add("job")

    def _list_namespaced_pod(self, *_, **__):
        return SimpleNamespace(items=[self.pod])

    def _read_namespaced_pod_log(self, *_, **__):
        return SimpleNamespace(stream=lambda size: iter([b"epoch 1\n", b"epoch 2\n"]))

    def names(self):
        return [name for name, _, _ in self.calls]


@pytest.fixture
def cluster(monkeypatch):
    fake = FakeCluster()
    for api in ("BatchV1Api", "CoreV1Api", "NetworkingV1Api"):
        monkeypatch.setattr(client, api, lambda _api: fake)
    monkeypatch.setattr(k8s, "api_client", lambda: None)
    return fake


def start(tmp_path, **overrides):
    spec = make_spec(tmp_path, **overrides)
    return spec, KubernetesBackend(**{k: v for k, v in OPTIONS.items()}).start(spec, sockets=None)


def test_the_policy_exists_before_the_job_and_the_job_owns_both(tmp_path, cluster):
    _, process = start(tmp_path)
    creates = [n for n in cluster.names() if n.startswith("create_")]
    assert creates == ["create_namespaced_network_policy", "create_namespaced_secret",
                       "create_namespaced_job"]
    patches = [(n, a, k) for n, a, k in cluster.calls if n.startswith("patch_")]
    assert [n for n, _, _ in patches] == ["patch_namespaced_network_policy", "patch_namespaced_secret"]
    for _, args, kwargs in patches:
        assert args[2]["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        assert kwargs["_content_type"] == "application/merge-patch+json"
    process.kill()


def test_a_finished_job_gives_its_result_and_log_and_loses_its_token(tmp_path, cluster):
    spec, process = start(tmp_path)
    assert process.poll() is None
    cluster.conditions = [client.V1JobCondition(type="Complete", status="True")]
    result = process.wait(timeout=30)
    assert result.ok and result.usage.wall_seconds > 0
    assert spec.stdout.read_text() == "epoch 1\nepoch 2\n"
    assert "delete_namespaced_secret" in cluster.names()
    # the policy stays while a pod may: the Job's TTL removes it as its owner
    assert "delete_namespaced_network_policy" not in cluster.names()


def test_kill_deletes_the_job_in_the_foreground_then_its_policy(tmp_path, cluster):
    _, process = start(tmp_path)
    result = process.kill("cancelled")
    assert (result.killed, result.limit) == (True, "cancelled")
    names = cluster.names()
    [delete] = [(a, k) for n, a, k in cluster.calls if n == "delete_namespaced_job"]
    assert delete[1]["propagation_policy"] == "Foreground"
    assert names.index("delete_namespaced_job") < names.index("read_namespaced_job") \
        < names.index("delete_namespaced_network_policy")
    assert "delete_namespaced_secret" in names
    assert process.kill() is result and not [t for t in threading.enumerate()
                                             if t is process.follower and t.is_alive()]


def test_a_refused_create_removes_what_was_made(tmp_path, cluster):
    cluster.fail_job_create = True
    with pytest.raises(SandboxUnavailable, match="403 Forbidden"):
        start(tmp_path)
    names = cluster.names()
    assert {"delete_namespaced_network_policy", "delete_namespaced_secret"} <= set(names)
