"""The docker backend: a job runs in a container with the same guarantees as bwrap.

`docker run` with no network (`--network none`; tracking and the egress proxy are reached
through the launcher's loopback forwards to the unix sockets of the worker's relay, whose
directory is bind-mounted read-only at SOCKET_DIR), a read-only root filesystem, every
capability dropped, no-new-privileges, a numeric non-root user, memory (swap included), pids,
CPU and rlimits, a sized private /tmp, and nothing of the host but the workspace (read-write
at WORKSPACE), the spec's read-only mounts, the launcher file and the socket directory. The
environment is `common.job_env(spec)` (its PATH only with a mounted environment: otherwise the
image's own applies), nothing of the worker's. Never `--network host`.

What an operator must know:
- The engine must be local: bind mounts name host paths as the engine sees them.
- The workspace and the socket directory must be usable by LEDGERFLOW_DOCKER_USER's uid: a
  root worker hands the workspace over (as bwrap does); another worker must arrange it.
- The image must have `python3` on its PATH (the launcher is started with it, standard
  library only); its ENTRYPOINT is replaced by the launcher.
- A bind-mounted workspace has no size limit of its own: its size is measured while the job
  runs, as with bwrap, and a job over `disk_bytes` is killed.
- Variables go on the command line (`--env=KEY=VALUE`): the host's process list shows them
  while the job runs, as `docker inspect` does. The run token is never among them (it stays
  in the worker's relay); an operator's index URL with a password (a build variable) would be.
- Resource usage reports wall time only: the engine keeps the container's CPU and memory
  figures, and `--rm` removes them with it.
- A container is the engine's child, not the worker's: when the worker dies mid-job the
  container runs on. Every container carries its deadline as a label, and `sweep()` kills
  those past it (call it from the stale-lease sweep).
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from django.conf import settings

from config.sandbox.bwrap import DISK_CHECK_SECONDS, disk_usage
from config.sandbox.common import (
    LAUNCHER,
    LAUNCHER_SOURCE,
    SOCKET_DIR,
    forwards,
    job_env,
    launcher_argv,
    result_of_status,
)
from config.sandbox.spec import (
    ENV_MOUNT,
    WORKSPACE,
    Backend,
    Process,
    Result,
    SandboxUnavailable,
    Spec,
    Usage,
)

LABEL = "io.ledgerflow.sandbox"            # every container the backend starts
DEADLINE_LABEL = "io.ledgerflow.deadline"  # epoch seconds after which sweep() kills it
DEADLINE_GRACE = 60                        # the worker's own time limit comes first
CLIENT_ENV = ("PATH", "HOME", "LANG", "XDG_RUNTIME_DIR")  # the docker CLI's own needs
ENGINE_TIMEOUT = 30
INSTALL_HINT = ("Install Docker Engine (Debian: `apt-get install docker.io`) and start it, let the "
                "worker's user reach it (the `docker` group, or DOCKER_HOST), or choose another "
                "backend with LEDGERFLOW_SANDBOX (bwrap is the default on Linux).")
_NUMERIC_USER = re.compile(r"^(\d+)(?::(\d+))?$")
_MOUNT_UNSAFE = re.compile(r"[,\"\n\r\x00]")  # would break --mount's CSV syntax


def client_env() -> dict[str, str]:
    """The docker CLI's environment: what it needs to find its engine, and nothing that could
    reach the container (every --env names its value; none is taken from this one)."""
    return {k: v for k, v in os.environ.items() if k in CLIENT_ENV or k.startswith("DOCKER_")}


def image_env(spec: Spec) -> dict[str, str]:
    """`job_env(spec)`, less PATH unless a built environment is mounted: the image's own PATH
    is part of the environment the image is (conda images keep python in /opt/conda/bin)."""
    env = job_env(spec)
    if not any(m.target == ENV_MOUNT for m in (*spec.mounts, *spec.writable_mounts)):
        env.pop("PATH", None)
    for key in env:
        if not key or "=" in key or "\x00" in key:
            raise ValueError(f"not an environment variable name: {key!r}")
    return env


def checked_user(user: str) -> str:
    """A numeric uid[:gid], neither of them 0: a name could map to root inside the image."""
    match = _NUMERIC_USER.match(user)
    if not match or int(match[1]) == 0 or (match[2] is not None and int(match[2]) == 0):
        raise ValueError(f"the docker sandbox runs as a numeric non-root uid[:gid], not {user!r}"
                         " (LEDGERFLOW_DOCKER_USER)")
    return user


def _mount(source: Path | str, target: str, readonly: bool = True) -> list[str]:
    source = str(Path(source).resolve())
    if _MOUNT_UNSAFE.search(source) or _MOUNT_UNSAFE.search(target):
        raise ValueError(f"cannot bind-mount {source!r} at {target!r}: a comma, quote or "
                         "newline in the path")
    # --mount, not --volume: a missing source is an error rather than a new root-owned directory
    return ["--mount", f"type=bind,source={source},target={target}" + (",readonly" if readonly else "")]


def _limits(spec: Spec, cpus: float | None) -> list[str]:
    limits = spec.limits
    argv = ["--memory", str(limits.memory_bytes),
            "--memory-swap", str(limits.memory_bytes),  # equal: no swap beyond the limit
            "--pids-limit", str(limits.processes)]
    if cpus:
        argv += ["--cpus", f"{cpus:g}"]
    for name, value in (("cpu", limits.cpu_seconds), ("fsize", limits.file_bytes),
                        ("nofile", limits.open_files), ("core", 0)):
        argv += ["--ulimit", f"{name}={value}:{value}"]
    return argv


def _mounts(spec: Spec, sockets: Path | None) -> list[str]:
    argv = [*_mount(spec.workspace, WORKSPACE, readonly=False),
            *_mount(LAUNCHER_SOURCE, LAUNCHER)]
    if forwards(spec):
        if sockets is None:
            raise ValueError(f"a {spec.network} job needs the relay's socket directory (sockets=)")
        # read-only: connecting to a unix socket needs no write access to the mount
        argv += _mount(sockets, SOCKET_DIR)
    for mount in spec.mounts:
        argv += _mount(mount.source, mount.target)
    for mount in spec.writable_mounts:  # environment builds: the prefix being built
        argv += _mount(mount.source, mount.target, readonly=False)
    return argv


def docker_argv(spec: Spec, *, docker: str = "docker", user: str = "1000:1000",
                sockets: Path | None = None, cpus: float | None = None,
                deadline: int | None = None, image: str = "") -> list[str]:
    """The `docker run` command line for a spec (pure: tests check it without an engine)."""
    image = spec.image or image
    if not image:
        raise ValueError("the docker sandbox runs a container image, and the spec names none")
    tmp = spec.limits.tmp_bytes
    labels = [f"{LABEL}=1"] + ([f"{DEADLINE_LABEL}={deadline}"] if deadline else [])
    launcher = launcher_argv(spec, python="python3")
    return [
        docker, "run", "--rm", "--name", spec.name, *[a for lb in labels for a in ("--label", lb)],
        "--network", "none", "--ipc", "private",
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--user", checked_user(user),
        # tini as PID 1: it reaps orphans (zombies would count against --pids-limit) and the
        # container, hence every process in it, ends when the launcher does
        "--init",
        # exec allowed: sdist builds compile and run probes in $TMPDIR, and noexec would buy
        # nothing while the workspace is writable and executable
        "--tmpfs", f"/tmp:rw,exec,nosuid,nodev,size={tmp},mode=1777",  # noqa: S108 (inside)
        # output goes once, attached, to the spec's files; not also to the engine's log files
        "--log-driver", "none",
        *_limits(spec, cpus), *_mounts(spec, sockets),
        *[f"--env={key}={value}" for key, value in sorted(image_env(spec).items())],
        "--workdir", spec.cwd,
        "--entrypoint", launcher[0], image, *launcher[1:],
    ]


def _run_cli(argv: list[str], timeout: float = ENGINE_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,  # noqa: S603
                          check=False, env=client_env(), stdin=subprocess.DEVNULL)


class DockerProcess(Process):
    """A `docker run` client attached to its container; the container is killed through the
    engine, since it is the engine's child, not ours."""

    def __init__(self, spec: Spec, argv: list[str], docker: str):
        self.spec, self.docker = spec, docker
        self.started = time.monotonic()
        self.result: Result | None = None
        self._disk_checked = self.started
        with open(spec.stdout, "ab") as out, open(spec.stderr, "ab") as err:
            self.client = subprocess.Popen(argv, stdout=out, stderr=err,  # noqa: S603
                                           stdin=subprocess.DEVNULL, env=client_env(),
                                           start_new_session=True)

    def _usage(self) -> Usage:
        return Usage(wall_seconds=time.monotonic() - self.started)

    def _finish(self, code: int, limit: str = "", killed: bool = False) -> Result:
        # a SIGKILL in the container that the backend did not send: the memory cgroup's OOM
        # killer (a container is a cgroup of its own; the job killing itself is the exception)
        if code == 128 + signal.SIGKILL and not killed and not limit:
            limit = "memory"
        if code < 0:  # the client itself was signalled: the container's status is unknown
            code = 128 - code
        self.result = self.result or result_of_status(code, self._usage(), limit, killed)
        return self.result

    def poll(self) -> Result | None:
        if self.result:
            return self.result
        code = self.client.poll()
        if code is not None:
            return self._finish(code)
        if time.monotonic() - self.started > self.spec.limits.wall_seconds:
            return self.kill("time")
        if self._over_disk():
            return self.kill("disk")
        return None

    def _over_disk(self) -> bool:
        # a bind mount has no size of its own: measured, as bwrap's workspace is
        if time.monotonic() - self._disk_checked < DISK_CHECK_SECONDS:
            return False
        self._disk_checked = time.monotonic()
        return disk_usage(self.spec.workspace) > self.spec.limits.disk_bytes

    def wait(self, timeout: float | None = None) -> Result | None:
        end = None if timeout is None else time.monotonic() + timeout
        while (result := self.poll()) is None:
            step = 1.0 if end is None else min(1.0, end - time.monotonic())
            if step <= 0:
                return None
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.client.wait(timeout=step)
        return result

    def kill(self, limit: str = "") -> Result:
        if self.result:
            return self.result
        end, code = time.monotonic() + ENGINE_TIMEOUT, None
        while code is None and time.monotonic() < end:
            # again until the client ends: a container still being created misses a kill
            _run_cli([self.docker, "kill", self.spec.name])
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.client.wait(timeout=2)
        if code is None:
            # the engine does not answer: stop the client, so it starts no container it may
            # still be creating, and remove whatever it created
            os.killpg(self.client.pid, signal.SIGKILL)
            code = self.client.wait()
        _run_cli([self.docker, "rm", "--force", self.spec.name])  # created, never started
        return self._finish(code, limit, killed=True)


class DockerBackend(Backend):
    name = "docker"

    def __init__(self, *, docker: str | None = None, user: str | None = None,
                 cpus: float | None = None, image: str | None = None):
        self.docker = docker or getattr(settings, "LEDGERFLOW_DOCKER", "docker")
        self.user = user or getattr(settings, "LEDGERFLOW_DOCKER_USER", "1000:1000")
        self.cpus = float(getattr(settings, "LEDGERFLOW_DOCKER_CPUS", 0) or 0) if cpus is None else cpus
        self.image = getattr(settings, "LEDGERFLOW_DOCKER_IMAGE", "") if image is None else image

    def check(self) -> None:
        try:
            checked_user(self.user)
        except ValueError as exc:
            raise SandboxUnavailable(str(exc)) from None
        binary = shutil.which(self.docker)
        if binary is None:
            raise SandboxUnavailable(f"The docker sandbox needs the docker command, and "
                                     f"{self.docker!r} was not found (LEDGERFLOW_DOCKER). "
                                     + INSTALL_HINT)
        try:
            probe = _run_cli([binary, "version", "--format", "{{.Server.Version}}"])
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"The docker sandbox cannot use {binary}: {exc}. "
                                     + INSTALL_HINT) from None
        if probe.returncode != 0 or not probe.stdout.strip():
            detail = (probe.stderr.strip() or probe.stdout.strip())[-300:]
            raise SandboxUnavailable(f"The docker sandbox's {binary} cannot reach a Docker "
                                     f"engine: {detail}. " + INSTALL_HINT)

    def start(self, spec: Spec, sockets: Path | None = None) -> DockerProcess:
        """Run `spec` in a container. `sockets`: the host directory holding the worker's relay
        sockets (tracking.sock, egress.sock), bound read-only at SOCKET_DIR; required when the
        spec's network uses one of them."""
        deadline = int(time.time()) + spec.limits.wall_seconds + DEADLINE_GRACE
        argv = docker_argv(spec, docker=self.docker, user=self.user, sockets=sockets,
                           cpus=self.cpus or None, deadline=deadline, image=self.image)
        _own_workspace(spec, self.user)
        return DockerProcess(spec, argv, self.docker)


def _own_workspace(spec: Spec, user: str) -> None:
    """The container's uid must write its workspace (and HOME in it): a root worker hands
    them over, as bwrap does; any other worker must have made them writable to that uid."""
    (spec.workspace / "home").mkdir(exist_ok=True)
    if os.geteuid() != 0:
        return
    uid, _, gid = checked_user(user).partition(":")
    for path in [spec.workspace, *spec.workspace.rglob("*"), *[m.source for m in spec.writable_mounts]]:
        os.lchown(path, int(uid), int(gid or uid))


def sweep(docker: str = "docker", now: float | None = None) -> list[str]:
    """Kill the sandbox containers past their deadline (a worker died under them); answers
    their names. Safe with many workers on one engine: the deadline is absolute."""
    listing = _run_cli([docker, "ps", "--filter", f"label={LABEL}", "--format",
                        f'{{{{.Names}}}} {{{{.Label "{DEADLINE_LABEL}"}}}}'])
    now = time.time() if now is None else now
    expired = []
    for line in listing.stdout.splitlines():
        name, _, deadline = line.strip().partition(" ")
        if name and deadline.isdigit() and int(deadline) < now:
            expired.append(name)
    if expired:
        _run_cli([docker, "rm", "--force", *expired])
    return expired
