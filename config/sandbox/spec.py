"""What a sandbox is asked to run, and what it answers: one small interface for every backend.

A job hands a `Spec` (argv, workspace, environment, read-only mounts, limits, network) to a
backend's `start()` and gets a `Process`: `poll()`/`wait()`/`kill()` answer a `Result` (exit
status, which limit ended it, resource usage); stdout and stderr go to the files the spec
names, so the caller can follow them while the process runs.

Inside every backend the job sees the same layout: its workspace at `WORKSPACE` (the only
writable path but a private `/tmp`), read-only mounts where the spec says, and, when it may
talk to tracking, `MLFLOW_TRACKING_URI` on a loopback port of its own network namespace.
"""

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

WORKSPACE = "/job"          # the job's workspace, inside the sandbox
ENV_MOUNT = "/env"          # a built environment (virtualenv/conda prefix), read-only
RELAY_PORT = 5000           # loopback port inside: tracking (MLflow's default port)
PROXY_PORT = 3128           # loopback port inside: egress proxy for builds and Git fetches
SANDBOX_UID = 1000          # the identity inside (synthesized /etc/passwd entry)


class Network(enum.StrEnum):
    NONE = "none"           # loopback only
    TRACKING = "tracking"   # loopback + the tracking relay
    EGRESS = "egress"       # loopback + an HTTP(S) proxy to allow-listed hosts (builds, Git)


@dataclass(frozen=True)
class Limits:
    wall_seconds: int = 3600
    cpu_seconds: int = 3600           # per process (RLIMIT_CPU); the cgroup counts the whole
    memory_bytes: int = 4 << 30       # the whole sandbox where a memory cgroup exists
    processes: int = 256              # tasks in the sandbox (pids cgroup / RLIMIT_NPROC)
    file_bytes: int = 2 << 30         # largest single file (RLIMIT_FSIZE)
    disk_bytes: int = 8 << 30         # the workspace as a whole
    open_files: int = 1024
    tmp_bytes: int = 512 << 20        # the private /tmp (a sized tmpfs)


@dataclass(frozen=True)
class Mount:
    """A host path shown read-only inside at `target`."""

    source: Path
    target: str


@dataclass(frozen=True)
class Relay:
    """Tracking as the job reaches it: requests to MLflow's routes are forwarded to `upstream`
    with `token` as their credential (the token itself never enters the sandbox)."""

    upstream: str
    token: str


@dataclass(frozen=True)
class Egress:
    """Where an EGRESS job may connect through the proxy: host names (exact, or `.suffix`)
    and ports; private, loopback and link-local addresses only when `allow_private` or
    inside one of `networks`; cloud metadata, unspecified and multicast addresses never."""

    hosts: tuple[str, ...]
    ports: tuple[int, ...] = (443,)
    allow_private: bool = False
    networks: tuple[str, ...] = ()   # CIDRs open even if private (an index mirror's network)


@dataclass(frozen=True)
class Spec:
    argv: list[str]
    workspace: Path                   # host directory, WORKSPACE inside; created by the caller
    stdout: Path                      # host files the job's output goes to (outside the
    stderr: Path                      # workspace: the job cannot rewrite its own log)
    name: str                         # unique per job: container and cgroup names
    cwd: str = WORKSPACE
    env: Mapping[str, str] = field(default_factory=dict)  # all the job sees, besides PATH,
    mounts: tuple[Mount, ...] = ()    # HOME, TMPDIR and LANG that the backend sets
    limits: Limits = Limits()
    network: Network = Network.NONE
    relay: Relay | None = None        # with Network.TRACKING
    egress: Egress | None = None      # with Network.EGRESS
    image: str = ""                   # docker/kubernetes: the container image (docker_env)
    writable_mounts: tuple[Mount, ...] = ()  # environment builds only: the prefix being built


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float = 0.0
    max_rss_bytes: int = 0
    wall_seconds: float = 0.0


@dataclass(frozen=True)
class Result:
    exit_code: int | None             # None when ended by a signal
    signal: int | None = None
    limit: str = ""                   # the limit that ended it: "time", "memory", "cpu",
    usage: Usage = Usage()            # "processes", "file size", "disk"; "" for none
    killed: bool = False              # ended by kill() (cancel, time limit, disk)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.limit


class SandboxUnavailable(Exception):
    """This host cannot run untrusted code with the configured backend: the message says what
    is missing and how to install it. Never answered by running unsandboxed."""


class Process:
    """A started job. Backends subclass it."""

    def poll(self) -> Result | None:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> Result | None:
        raise NotImplementedError

    def kill(self, limit: str = "") -> Result:
        """End every process of the job; `limit` names the limit that made the caller do it."""
        raise NotImplementedError


class Backend:
    name = ""

    def check(self) -> None:
        """Raise SandboxUnavailable when this host cannot run the backend."""

    def start(self, spec: Spec) -> Process:
        raise NotImplementedError
