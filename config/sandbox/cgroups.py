"""Per-job control groups where the host lets the worker make them: a memory limit and a
task limit over the whole sandbox (rlimits count per process or per user), the whole job's
CPU time and peak memory, and a last sweep that kills whatever is left.

cgroup v2 (one hierarchy; the worker's own cgroup must be delegated to it) and v1 (one
hierarchy per controller, as on the project's machines) are both handled. Without a writable
hierarchy a job still has its rlimits and pid namespace; `available()` says which applies.
"""

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpuacct")


def _own_path(controller: str) -> str:
    """This process's cgroup in a v1 controller's hierarchy ("" for v2's)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return "/"


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


@dataclass
class JobCgroup:
    """The directories of one job's cgroup (one per v1 controller, or one v2 directory)."""

    dirs: dict[str, Path]
    version: int

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in dict.fromkeys(self.dirs.values())]

    def _read(self, controller: str, name: str) -> str:
        with contextlib.suppress(OSError, KeyError):
            return (self.dirs[controller] / name).read_text()
        return ""

    def _int(self, controller: str, name: str) -> int:
        text = self._read(controller, name).strip()
        return int(text) if text.isdigit() else 0

    def stats(self) -> dict:
        """Peak memory (bytes), whether the memory or task limit was hit, CPU seconds."""
        if self.version == 1:
            return {"memory_peak": self._int("memory", "memory.max_usage_in_bytes"),
                    "memory_hit": self._int("memory", "memory.failcnt") > 0,
                    "pids_hit": "max 0" not in self._read("pids", "pids.events"),
                    "cpu_seconds": self._int("cpuacct", "cpuacct.usage") / 1e9}
        events = dict(line.split() for line in self._read("memory", "memory.events").splitlines()
                      if line.count(" ") == 1)
        cpu = dict(line.split() for line in self._read("memory", "cpu.stat").splitlines()
                   if line.count(" ") == 1)
        return {"memory_peak": self._int("memory", "memory.peak"),
                "memory_hit": int(events.get("max", 0)) > 0 or int(events.get("oom_kill", 0)) > 0,
                "pids_hit": "max 0" not in self._read("memory", "pids.events"),
                "cpu_seconds": int(cpu.get("usage_usec", 0)) / 1e6}

    def pids(self) -> set[int]:
        found = set()
        for name in self.procs_files():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in Path(name).read_text().split())
        return found

    def kill_all(self) -> None:
        if self.version == 2:
            with contextlib.suppress(OSError):
                (self.dirs["memory"] / "cgroup.kill").write_text("1")
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def kill_all_and_wait(self, seconds: float = 10.0) -> bool:
        """Kill every task and wait until none is left (a dying pid namespace takes a moment);
        False if some survive the wait."""
        deadline = time.monotonic() + seconds
        while self.pids():
            self.kill_all()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def remove(self) -> None:
        for directory in dict.fromkeys(self.dirs.values()):
            with contextlib.suppress(OSError):
                directory.rmdir()


def _v2_base() -> Path | None:
    if not (ROOT / "cgroup.controllers").exists():
        return None
    base = ROOT / _own_path("").lstrip("/") / "ledgerflow-jobs"
    with contextlib.suppress(OSError):
        base.mkdir(exist_ok=True)
        (base / "cgroup.subtree_control").write_text("+memory +pids")
    return base if _writable(base) else None


def _v1_bases() -> dict[str, Path] | None:
    bases = {}
    for controller in V1_CONTROLLERS:
        base = ROOT / controller / _own_path(controller).lstrip("/") / "ledgerflow-jobs"
        with contextlib.suppress(OSError):
            base.mkdir(exist_ok=True)
        if not _writable(base):
            return None
        bases[controller] = base
    return bases


def available() -> str:
    """"v2", "v1" or "" (no hierarchy this worker may write)."""
    if _v2_base() is not None:
        return "v2"
    return "v1" if _v1_bases() is not None else ""


def create(name: str, *, memory_bytes: int, processes: int) -> JobCgroup | None:
    """A cgroup for one job with its limits set, or None where the host offers none."""
    try:
        if (base := _v2_base()) is not None:
            directory = base / name
            directory.mkdir()
            (directory / "memory.max").write_text(str(memory_bytes))
            (directory / "memory.swap.max").write_text("0")
            (directory / "pids.max").write_text(str(processes))
            return JobCgroup({c: directory for c in V1_CONTROLLERS}, 2)
        if (bases := _v1_bases()) is None:
            return None
        dirs = {c: bases[c] / name for c in V1_CONTROLLERS}
        for directory in dirs.values():
            directory.mkdir()
        (dirs["memory"] / "memory.limit_in_bytes").write_text(str(memory_bytes))
        with contextlib.suppress(OSError):  # without swap accounting, swap is not limited
            (dirs["memory"] / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        (dirs["pids"] / "pids.max").write_text(str(processes))
        return JobCgroup(dirs, 1)
    except OSError:
        return None
