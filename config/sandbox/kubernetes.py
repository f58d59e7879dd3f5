"""The kubernetes backend: a Job per run through the official `kubernetes` client, for users
who outgrow one machine (docs/sandbox.md says how to run it on a cluster).

A run gets a NetworkPolicy (created first: its pod never runs unrestricted), a Secret with the
run token, and a Job whose pod meets the "restricted" Pod Security Standard, with memory, CPU
and ephemeral-storage limits, a deadline, no retry, and sized scratch volumes at WORKSPACE and
/tmp (in memory, like the other backends' tmpfs: it counts against the memory limit).

Where it differs from bwrap and docker, by design:
- The project is in the image: no host path reaches a cluster. `spec.image` must be built with
  the project (as MLflow builds docker_env: the project copied into the image's WORKDIR), and
  the command runs there (or in `spec.cwd` when it is not WORKSPACE); WORKSPACE is empty
  scratch (HOME, outputs). Host mounts, environment builds and Git fetches (Network.EGRESS)
  are refused: the image is the environment.
- Tracking is reached directly, not through the worker's unix-socket relay; the NetworkPolicy
  allows egress only to the tracking pods and cluster DNS. So the run token is in the pod
  (MLFLOW_TRACKING_TOKEN, from the Secret), where bwrap and docker never let it in; its
  allow-list and its end with the run bound what it can do.
- No launcher: no per-process rlimits; processes are bounded by the kubelet's podPidsLimit.
- stdout and stderr arrive interleaved, into `spec.stdout`; `spec.stderr` gets the backend's
  own notes (why a pod waits, why the Job failed).
"""

import contextlib
import hashlib
import re
import signal
import threading
import time

from django.conf import settings
from kubernetes import client, config

from config.sandbox.common import result_of_status
from config.sandbox.docker import image_env
from config.sandbox.spec import (
    SANDBOX_UID,
    WORKSPACE,
    Backend,
    Network,
    Process,
    Result,
    SandboxUnavailable,
    Spec,
    Usage,
)

JOB_LABEL = "ledgerflow.io/job"
CONTAINER = "job"
TOKEN_KEY = "token"
DNS_PEER = client.V1NetworkPolicyPeer(
    namespace_selector=client.V1LabelSelector(match_labels={"kubernetes.io/metadata.name": "kube-system"}),
    pod_selector=client.V1LabelSelector(match_labels={"k8s-app": "kube-dns"}))
API_TIMEOUT = 30
STATUS_SECONDS = 2.0
GONE_TIMEOUT = 120   # pods of a deleted Job get their grace period, then SIGKILL
_NOT_NAME = re.compile(r"[^a-z0-9-]+")


def k8s_name(name: str) -> str:
    """A DNS-1123 label for `name`, short enough for the pod names the Job controller derives
    (and for its job-name label); a digest keeps altered names unique."""
    clean = _NOT_NAME.sub("-", name.lower()).strip("-")
    if clean == name and len(clean) <= 52:
        return clean
    return f"{clean[:43].rstrip('-')}-{hashlib.sha256(name.encode()).hexdigest()[:8]}".lstrip("-")


def parse_selector(selector: str) -> dict[str, str]:
    """`key=value,key2=value2` as matchLabels (NetworkPolicy peers need labels, not a query)."""
    terms = [t.strip().partition("=") for t in selector.replace("==", "=").split(",") if t.strip()]
    if not terms or any(not sep or not key.strip() or set("!()") & set(key + value)
                        for key, sep, value in terms):
        raise ValueError(f"tracking selector {selector!r}: one or more key=value terms, nothing else")
    return {key.strip(): value.strip() for key, _, value in terms}


def _refuse_unsupported(spec: Spec) -> None:
    if spec.mounts or spec.writable_mounts or spec.network == Network.EGRESS:
        raise SandboxUnavailable("The kubernetes sandbox mounts no host files, builds no environment "
                                 "and fetches no Git source: the image must hold the project and "
                                 "its environment (docker_env).")
    if spec.network == Network.TRACKING and spec.relay is None:
        raise ValueError("a tracking job needs its relay (the run token)")


def _env(spec: Spec, tracking_url: str, secret: str) -> list[client.V1EnvVar]:
    env = image_env(spec)  # job_env less PATH: the image's own PATH applies
    if spec.network == Network.TRACKING:
        env["MLFLOW_TRACKING_URI"] = tracking_url
    out = [client.V1EnvVar(name=k, value=v) for k, v in sorted(env.items())]
    if spec.network == Network.TRACKING:
        out.append(client.V1EnvVar(name="MLFLOW_TRACKING_TOKEN", value_from=client.V1EnvVarSource(
            secret_key_ref=client.V1SecretKeySelector(name=secret, key=TOKEN_KEY))))
    return out


def _container(spec: Spec, image: str, env: list, cpu: str) -> client.V1Container:
    amounts = {"memory": str(spec.limits.memory_bytes), "cpu": cpu,
               "ephemeral-storage": str(spec.limits.disk_bytes)}
    return client.V1Container(
        name=CONTAINER, image=image, command=list(spec.argv), env=env,
        working_dir=None if spec.cwd == WORKSPACE else spec.cwd,  # None: the image's WORKDIR
        security_context=client.V1SecurityContext(
            run_as_non_root=True, allow_privilege_escalation=False, privileged=False,
            read_only_root_filesystem=True, capabilities=client.V1Capabilities(drop=["ALL"]),
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")),
        # requests = limits: Guaranteed QoS, the last to be evicted under node pressure
        resources=client.V1ResourceRequirements(limits=amounts, requests=dict(amounts)),
        volume_mounts=[client.V1VolumeMount(name="workspace", mount_path=WORKSPACE),
                       client.V1VolumeMount(name="tmp", mount_path="/tmp")])  # noqa: S108 (in the pod)


def _pod_spec(spec: Spec, container: client.V1Container, runtime_class: str) -> client.V1PodSpec:
    return client.V1PodSpec(
        containers=[container], restart_policy="Never", runtime_class_name=runtime_class or None,
        automount_service_account_token=False, enable_service_links=False,
        host_network=False, host_pid=False, host_ipc=False, termination_grace_period_seconds=10,
        security_context=client.V1PodSecurityContext(
            run_as_non_root=True, run_as_user=SANDBOX_UID, run_as_group=SANDBOX_UID,
            fs_group=SANDBOX_UID, seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")),
        volumes=[
            client.V1Volume(name="workspace", empty_dir=client.V1EmptyDirVolumeSource(
                size_limit=str(spec.limits.disk_bytes))),
            client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource(
                medium="Memory", size_limit=str(spec.limits.tmp_bytes)))])


def _network_policy(name: str, namespace: str, labels: dict, spec: Spec, tracking_selector: str,
                    tracking_port: int, tracking_namespace: str) -> client.V1NetworkPolicy:
    egress = []
    if spec.network == Network.TRACKING:
        tracking = client.V1NetworkPolicyPeer(
            pod_selector=client.V1LabelSelector(match_labels=parse_selector(tracking_selector)),
            namespace_selector=client.V1LabelSelector(match_labels={
                "kubernetes.io/metadata.name": tracking_namespace}) if tracking_namespace else None)
        egress = [client.V1NetworkPolicyEgressRule(to=[tracking], ports=[
                      client.V1NetworkPolicyPort(protocol="TCP", port=tracking_port)]),
                  client.V1NetworkPolicyEgressRule(to=[DNS_PEER], ports=[
                      client.V1NetworkPolicyPort(protocol=p, port=53) for p in ("UDP", "TCP")])]
    return client.V1NetworkPolicy(
        api_version="networking.k8s.io/v1", kind="NetworkPolicy",
        metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=labels),
        spec=client.V1NetworkPolicySpec(
            pod_selector=client.V1LabelSelector(match_labels={JOB_LABEL: name}),
            policy_types=["Ingress", "Egress"], ingress=[], egress=egress))


def job_objects(spec: Spec, *, namespace: str, image: str, tracking_url: str,
                tracking_selector: str, tracking_port: int, tracking_namespace: str = "",
                cpu: str = "1", ttl_seconds: int = 600, runtime_class: str = "",
                ) -> tuple[client.V1Secret | None, client.V1Job, client.V1NetworkPolicy]:
    """The Secret (None for a job that does not reach tracking), Job and NetworkPolicy of a
    run (pure: tests validate them against the API schema without a cluster)."""
    _refuse_unsupported(spec)
    name = k8s_name(spec.name)
    labels = {"app.kubernetes.io/name": "ledgerflow-job",
              "app.kubernetes.io/managed-by": "ledgerflow", JOB_LABEL: name}
    meta = client.V1ObjectMeta(name=name, namespace=namespace, labels=labels)
    secret = None
    if spec.network == Network.TRACKING:
        secret = client.V1Secret(
            api_version="v1", kind="Secret", type="Opaque", immutable=True,
            metadata=client.V1ObjectMeta(name=f"{name}-token", namespace=namespace, labels=labels),
            string_data={TOKEN_KEY: spec.relay.token})
    container = _container(spec, spec.image or image, _env(spec, tracking_url, f"{name}-token"), cpu)
    job = client.V1Job(api_version="batch/v1", kind="Job", metadata=meta, spec=client.V1JobSpec(
        backoff_limit=0, active_deadline_seconds=spec.limits.wall_seconds,
        ttl_seconds_after_finished=ttl_seconds,
        template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=labels),
                                          spec=_pod_spec(spec, container, runtime_class))))
    policy = _network_policy(name, namespace, labels, spec, tracking_selector, tracking_port,
                             tracking_namespace)
    return secret, job, policy


def _condition(job: client.V1Job, kind: str) -> client.V1JobCondition | None:
    conditions = (job.status.conditions if job.status else None) or []
    return next((c for c in conditions if c.type == kind and c.status == "True"), None)


def result_of_job(job: client.V1Job, pod: client.V1Pod | None, usage: Usage) -> Result | None:
    """A finished Job as a Result; None while it runs. The limit is named from the cluster's
    reasons: DeadlineExceeded (time), OOMKilled (memory), an eviction for storage (disk)."""
    if _condition(job, "Complete"):
        return Result(exit_code=0, usage=usage)
    failed = _condition(job, "Failed")
    if failed is None:
        return None
    limit = "time" if failed.reason == "DeadlineExceeded" else ""
    statuses = (pod.status.container_statuses if pod and pod.status else None) or []
    ended = next((s.state.terminated for s in statuses if s.state and s.state.terminated), None)
    if ended is not None:
        limit = limit or ("memory" if ended.reason == "OOMKilled" else "")
        return result_of_status(ended.exit_code, usage, limit, killed=limit == "time")
    if pod and pod.status and pod.status.reason == "Evicted":
        limit = limit or ("disk" if "storage" in (pod.status.message or "") else "")
    return Result(exit_code=None, signal=signal.SIGKILL, limit=limit, usage=usage, killed=bool(limit))


def _ignore_missing(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs, _request_timeout=API_TIMEOUT)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


class KubernetesProcess(Process):
    """A run's Job. Its pod's log is followed into `spec.stdout` by a thread."""

    def __init__(self, api: client.ApiClient, spec: Spec, objects: tuple):
        self.batch, self.core, self.net = (client.BatchV1Api(api), client.CoreV1Api(api),
                                           client.NetworkingV1Api(api))
        self.spec, (self.secret, self.job, self.policy) = spec, objects
        self.name, self.namespace = self.job.metadata.name, self.job.metadata.namespace
        self.started, self.polled, self.result = time.monotonic(), 0.0, None
        self.stderr = open(spec.stderr, "ab")  # noqa: SIM115 (closed when the job ends)
        self._create()
        self.stop, self.follower = threading.Event(), threading.Thread(target=self._follow, daemon=True)
        self.follower.start()

    def _create(self) -> None:
        ns = self.namespace
        try:
            # the policy first: the pod must never run before it is restricted
            self.net.create_namespaced_network_policy(ns, self.policy, _request_timeout=API_TIMEOUT)
            if self.secret is not None:
                self.core.create_namespaced_secret(ns, self.secret, _request_timeout=API_TIMEOUT)
            created = self.batch.create_namespaced_job(ns, self.job, _request_timeout=API_TIMEOUT)
        except client.ApiException as exc:
            with contextlib.suppress(client.ApiException):  # no pod ran: nothing to restrict
                self._delete(policy=True)
            self.stderr.close()
            raise SandboxUnavailable(f"The kubernetes sandbox could not create the run's objects "
                                     f"in namespace {ns!r}: {exc.status} {exc.reason}") from None
        # owned by the Job: its ttlSecondsAfterFinished removes the Secret and policy with it
        owner = {"metadata": {"ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                 "name": self.name, "uid": created.metadata.uid}]}}
        merge = {"_content_type": "application/merge-patch+json", "_request_timeout": API_TIMEOUT}
        try:
            self.net.patch_namespaced_network_policy(self.name, ns, owner, **merge)
            if self.secret is not None:
                self.core.patch_namespaced_secret(f"{self.name}-token", ns, owner, **merge)
        except client.ApiException as exc:  # the job runs; only the late clean-up is lost
            self._note(f"cannot hand the Secret and NetworkPolicy to the Job: {exc.status} {exc.reason}")

    def _note(self, text: str) -> None:
        self.stderr.write(f"ledgerflow kubernetes: {text}\n".encode())
        self.stderr.flush()

    def _pod(self) -> client.V1Pod | None:  # backoffLimit 0: at most one
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"{JOB_LABEL}={self.name}",
                                             _request_timeout=API_TIMEOUT).items
        return pods[0] if pods else None

    def _wait_started(self) -> client.V1Pod | None:  # noting why it waits meanwhile
        said = ""
        while not self.stop.wait(1.0):
            pod = self._pod()
            statuses = (pod.status.container_statuses if pod and pod.status else None) or []
            state = statuses[0].state if statuses else None
            if state and (state.running or state.terminated):
                return pod
            waiting = state.waiting if state else None
            if waiting and waiting.reason and waiting.reason != said:
                said = waiting.reason
                self._note(f"pod waiting: {waiting.reason}: {waiting.message or ''}")
        return None

    def _follow(self) -> None:
        with contextlib.suppress(Exception):  # the log is a convenience; status comes from the Job
            pod = self._wait_started()
            if pod is None:
                return
            stream = self.core.read_namespaced_pod_log(pod.metadata.name, self.namespace,
                                                       container=CONTAINER, follow=True,
                                                       _preload_content=False)
            with open(self.spec.stdout, "ab") as out:
                for chunk in stream.stream(65536):
                    out.write(chunk)
                    out.flush()

    def _usage(self) -> Usage:  # wall time only: the cluster's metrics are not the Job's
        return Usage(wall_seconds=time.monotonic() - self.started)

    def _end(self, result: Result) -> Result:
        self.result = result
        self.stop.set()
        self.follower.join(timeout=10)
        # the token goes now; the policy when the pods are (kill(), or the Job's TTL as owner)
        with contextlib.suppress(client.ApiException):
            self._delete(job=False)
        self.stderr.close()
        return result

    def poll(self) -> Result | None:
        if self.result or time.monotonic() - self.polled < STATUS_SECONDS:
            return self.result  # callers poll often; the API server is asked every few seconds
        self.polled = time.monotonic()
        job = self.batch.read_namespaced_job_status(self.name, self.namespace,
                                                    _request_timeout=API_TIMEOUT)
        if (_condition(job, "Complete") or _condition(job, "Failed")) is None:
            # activeDeadlineSeconds ends it; this is the backstop should the cluster not
            if time.monotonic() - self.started > self.spec.limits.wall_seconds + GONE_TIMEOUT:
                return self.kill("time")
            return None
        self.follower.join(timeout=10)  # the rest of the log
        result = result_of_job(job, self._pod(), self._usage())
        if (failed := _condition(job, "Failed")) is not None:
            self._note(f"the Job failed: {failed.reason}: {failed.message or ''}")
        return self._end(result)

    def wait(self, timeout: float | None = None) -> Result | None:
        end = None if timeout is None else time.monotonic() + timeout
        while (result := self.poll()) is None:
            if (left := 1.0 if end is None else end - time.monotonic()) <= 0:
                return None
            time.sleep(min(1.0, left))
        return result

    def _delete(self, *, job: bool = True, policy: bool = False) -> None:
        if job:
            _ignore_missing(self.batch.delete_namespaced_job, self.name, self.namespace,
                            propagation_policy="Foreground")
        if self.secret is not None:
            _ignore_missing(self.core.delete_namespaced_secret, f"{self.name}-token", self.namespace)
        if policy:
            _ignore_missing(self.net.delete_namespaced_network_policy, self.name, self.namespace)

    def _gone(self) -> bool:  # deleted in the Foreground, the Job outlives its pods
        deadline = time.monotonic() + GONE_TIMEOUT
        while time.monotonic() < deadline:
            try:
                self.batch.read_namespaced_job(self.name, self.namespace, _request_timeout=API_TIMEOUT)
            except client.ApiException as exc:
                if exc.status == 404:
                    return True
                raise
            time.sleep(1.0)
        return False

    def kill(self, limit: str = "") -> Result:
        if self.result:
            return self.result
        self._delete()
        if self._gone():
            self._delete(job=False, policy=True)
        else:
            self._note(f"the Job's pods were not gone {GONE_TIMEOUT} s after its deletion")
        return self._end(Result(exit_code=None, signal=signal.SIGKILL, limit=limit,
                                usage=self._usage(), killed=True))


def api_client() -> client.ApiClient:
    """The cluster's API: the pod's service account in a cluster, else the kubeconfig."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        try:
            config.load_kube_config(client_configuration=configuration)
        except (config.ConfigException, OSError) as exc:
            raise SandboxUnavailable(
                "The kubernetes sandbox needs a cluster: no in-cluster service account and no "
                f"kubeconfig (KUBECONFIG, ~/.kube/config): {exc}. Run the worker in the cluster with "
                "a service account that may manage jobs, pods/log, secrets and networkpolicies in "
                "LEDGERFLOW_K8S_NAMESPACE, or point KUBECONFIG at such a cluster (docs/sandbox.md)."
            ) from None
    return client.ApiClient(configuration)


class KubernetesBackend(Backend):
    name = "kubernetes"
    DEFAULTS = {"image": "python:3.11-slim", "tracking_url": "", "tracking_port": 8000,
                "tracking_selector": "app.kubernetes.io/name=ledgerflow-web",
                "tracking_namespace": "", "cpu": "1", "ttl_seconds": 600, "runtime_class": ""}

    def __init__(self, namespace: str = "", **overrides):
        # LEDGERFLOW_K8S_<OPTION> for each option the caller does not give, as its default's type
        self.namespace = namespace or getattr(settings, "LEDGERFLOW_K8S_NAMESPACE", "ledgerflow-jobs")
        self.options = {key: type(value)(overrides.get(key, getattr(
            settings, f"LEDGERFLOW_K8S_{key.upper()}", value))) for key, value in self.DEFAULTS.items()}

    def check(self) -> None:
        api = api_client()
        if not self.options["tracking_url"]:
            raise SandboxUnavailable("The kubernetes sandbox needs LEDGERFLOW_K8S_TRACKING_URL: the "
                                     "address at which pods reach tracking inside the cluster.")
        try:
            client.BatchV1Api(api).list_namespaced_job(self.namespace, limit=1, _request_timeout=10)
        except Exception as exc:  # the API's refusal (RBAC, no such namespace), or no answer
            detail = f"{exc.status} {exc.reason}" if isinstance(exc, client.ApiException) else exc
            raise SandboxUnavailable(f"The kubernetes sandbox cannot list jobs in namespace "
                                     f"{self.namespace!r}: {detail}") from None

    def start(self, spec: Spec, sockets=None) -> KubernetesProcess:
        """Run `spec` as a Job; `sockets` (the relay's) goes unused: pods reach tracking directly."""
        objects = job_objects(spec, namespace=self.namespace, **self.options)
        return KubernetesProcess(api_client(), spec, objects)
