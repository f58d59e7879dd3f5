"""A hostile job against the real sandbox: each escape is tried twice, with the `none` backend
(where it must work: the probe is real) and with bwrap (where it must fail).

What a job must not reach: the service's files (code tree, venv, data directory and keys,
every organization's artifacts, other jobs, environments but its own), the environment of
any process of the service, local ports (PostgreSQL, Redis, anything listening), writes
outside its workspace, and processes that outlive it.
"""

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from config.sandbox import jobs
from config.sandbox.spec import WORKSPACE, Limits, Mount, Spec

PROBE = Path(__file__).with_name("probe.py")
ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("none", "bwrap")


def _run(backend: str, probes: list[dict], limits: Limits | None = None, mounts=()):
    with jobs.job_directory("probe") as job:
        shutil.copy(PROBE, job.workspace / "probe.py")
        (job.workspace / "probes.json").write_text(json.dumps(probes))
        spec = Spec(argv=["python3", f"{WORKSPACE}/probe.py", f"{WORKSPACE}/probes.json"],
                    workspace=job.workspace, stdout=job.stdout, stderr=job.stderr,
                    name=job.name, limits=limits or Limits(wall_seconds=60), mounts=mounts)
        result = jobs.run(spec, job, backend_name=backend)
        out, err = job.stdout.read_text(), job.stderr.read_text()
    assert result.exit_code == 0, (result, err)
    return {json.dumps(r["probe"], sort_keys=True): r for r in json.loads(out)}


@pytest.fixture
def service_files(settings, tmp_path):
    """Files of the kinds the service keeps, where it keeps them: a key in the data
    directory, another organization's artifact, another environment, another job."""
    data = Path(os.environ["LEDGERFLOW_DATA_DIR"])
    marker = uuid.uuid4().hex
    files = {
        "key": data / f"probe-signing-key-{marker}.pem",
        "artifact": Path(settings.LEDGERFLOW_ARTIFACT_ROOT) / "99999" / f"other-org-{marker}.txt",
        "environment": Path(settings.LEDGERFLOW_ENV_CACHE_DIR) / f"other-env-{marker}" / "x",
        "job": Path(settings.LEDGERFLOW_SANDBOX_WORK_DIR) / f"other-job-{marker}" / "ws" / "x",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"secret {marker}\n")
    files["code"] = ROOT / "config" / "settings" / "base.py"
    files["venv"] = ROOT / ".venv" / "pyvenv.cfg"
    yield files
    for name in ("key", "artifact", "environment", "job"):
        files[name].unlink(missing_ok=True)
    for name in ("environment", "job"):
        shutil.rmtree(files[name].parent if name == "environment" else
                      files[name].parent.parent, ignore_errors=True)


def _outcomes(results: dict) -> dict:
    """{target: outcome}, or {"kind:target": outcome} where targets repeat."""
    probes = [json.loads(key) for key in results]
    if len({p["target"] for p in probes}) < len(probes):
        return {f"{p['kind']}:{p['target']}": r["result"] for p, r in
                zip(probes, results.values(), strict=True)}
    return {p["target"]: r["result"] for p, r in zip(probes, results.values(), strict=True)}


def test_a_job_reads_no_file_of_the_service_or_of_others(service_files):
    probes = [{"kind": "read", "target": str(path)} for path in service_files.values()]
    for backend, expected in (("none", "escaped"), ("bwrap", "blocked")):
        outcomes = _outcomes(_run(backend, probes))
        assert set(outcomes.values()) == {expected}, (backend, outcomes)


def test_a_job_reads_no_environment_of_the_service(monkeypatch):
    canary = f"LEDGERFLOW_PROBE_CANARY_{uuid.uuid4().hex}"
    monkeypatch.setenv(canary, "secret")
    monkeypatch.setenv("SECRET_KEY", "worker-secret-key")
    # /proc/<pid>/environ shows what a process was started with: a process of the service's,
    # started with the canary in its environment, stands for the worker and the web server
    service = subprocess.Popen(["sleep", "60"], env=dict(os.environ))
    probes = [{"kind": "environ", "target": canary}, {"kind": "env", "target": "SECRET_KEY"},
              {"kind": "env", "target": canary}]
    try:
        none, bwrap = _outcomes(_run("none", probes)), _outcomes(_run("bwrap", probes))
    finally:
        service.kill()
        service.wait()
    assert none[f"environ:{canary}"] == "escaped"  # /proc/<the service>/environ
    assert none[f"env:{canary}"] == none["env:SECRET_KEY"] == "blocked"  # an allow-list only
    assert set(bwrap.values()) == {"blocked"}, bwrap


@pytest.fixture
def local_ports():
    """A port something listens on, and the test database's and broker's where they exist."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    ports = [listener.getsockname()[1]]
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        url = os.environ.get(name, "")
        if "127.0.0.1:" in url:
            ports.append(int(url.split("127.0.0.1:")[1].split("/")[0]))
    yield ports
    listener.close()


def test_a_job_connects_to_no_local_port(local_ports):
    probes = [{"kind": "connect", "target": port} for port in local_ports]
    assert set(_outcomes(_run("none", probes)).values()) == {"escaped"}
    assert set(_outcomes(_run("bwrap", probes)).values()) == {"blocked"}


def test_a_job_writes_nothing_outside_its_workspace(settings, service_files):
    marker = uuid.uuid4().hex
    environment = service_files["environment"].parent
    targets = [ROOT / f".probe-{marker}", ROOT / ".venv" / f".probe-{marker}",
               Path(service_files["key"]).parent / f"probe-{marker}",
               environment / f"probe-{marker}", Path("/tmp") / f"probe-{marker}"]
    probes = [{"kind": "write", "target": str(path)} for path in targets]
    try:
        assert set(_outcomes(_run("none", probes)).values()) == {"escaped"}
        for path in targets:
            assert path.exists()
            path.unlink()
        # a read-only mount of an environment, as a run gets its own: not writable either
        mounted = [{"kind": "write", "target": "/env/planted"}, *probes]
        outcomes = _outcomes(_run("bwrap", mounted, mounts=(Mount(environment, "/env"),)))
        assert set(outcomes.values()) == {"blocked"}, outcomes
        assert not any(path.exists() for path in targets)
        assert not (environment / "planted").exists()
    finally:
        for path in targets:
            path.unlink(missing_ok=True)


KEYCTL = ("import ctypes, platform, sys\n"  # keyctl(KEYCTL_GET_KEYRING_ID, session, 0)
          "number = 250 if platform.machine() == 'x86_64' else 219\n"
          "sys.exit(ctypes.CDLL(None).syscall(number, 0, -3, 0) < 0)")


def test_a_job_makes_no_namespace_and_mounts_nothing():
    """The seccomp filter: no user namespace (the root of many kernel escapes), no mount
    namespace, no keyring. The same commands work without the sandbox (this test runs as root,
    as the worker does)."""
    probes = [{"kind": "command", "target": ["unshare", "--user", "--map-root-user", "true"]},
              {"kind": "command", "target": ["unshare", "--mount", "true"]},
              {"kind": "command", "target": ["python3", "-c", KEYCTL]}]
    none = [r["result"] for r in _run("none", probes).values()]
    bwrap = [r["result"] for r in _run("bwrap", probes).values()]
    assert none[:2] == ["escaped", "escaped"], none
    assert bwrap == ["blocked", "blocked", "blocked"], bwrap


def _processes_named(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_no_process_of_a_job_outlives_it():
    marker = f"ledgerflow-probe-{uuid.uuid4().hex}"
    probes = [{"kind": "leave", "target": marker}]
    try:
        assert _outcomes(_run("none", probes))[marker] == "escaped"
        assert _processes_named(marker), "the daemon should outlive an unconfined job"
        for pid in _processes_named(marker):
            os.kill(pid, 9)
        assert _outcomes(_run("bwrap", probes))[marker] == "escaped"  # it did start...
        _gone(marker)  # ...and is gone with its sandbox
    finally:
        for pid in _processes_named(marker):
            os.kill(pid, 9)


def _gone(marker: str, seconds: float = 5.0) -> None:
    """No process of that name is left (a pid namespace's last processes take a moment)."""
    deadline = time.monotonic() + seconds
    while _processes_named(marker):
        assert time.monotonic() < deadline, f"left running: {_processes_named(marker)}"
        time.sleep(0.05)


def _limited(backend: str, script: str, limits: Limits) -> tuple:
    with jobs.job_directory("limit") as job:
        spec = Spec(argv=["python3", "-c", script], workspace=job.workspace, stdout=job.stdout,
                    stderr=job.stderr, name=job.name, limits=limits)
        result = jobs.run(spec, job, backend_name=backend)
        return result, jobs.describe(result, job)


MEMORY = "b = bytearray(768 << 20); b[::4096] = b'x' * len(b[::4096]); print('allocated')"
PROCESSES = ("import subprocess\n"
             "ps = [subprocess.Popen(['sleep', '5']) for _ in range(96)]\nprint('spawned')")
DISK = ("import os\nwith open('/job/fill', 'wb') as f:\n"
        "    for _ in range(48):\n        f.write(os.urandom(4 << 20)); f.flush()\n"
        "import time; time.sleep(5); print('filled')")


@pytest.mark.parametrize(("script", "limit", "tight", "loose"), [
    (MEMORY, "memory", Limits(wall_seconds=60, memory_bytes=256 << 20),
     Limits(wall_seconds=60, memory_bytes=2 << 30)),
    (PROCESSES, "processes", Limits(wall_seconds=60, processes=32),
     Limits(wall_seconds=60, processes=512)),
    (DISK, "disk", Limits(wall_seconds=60, disk_bytes=64 << 20),
     Limits(wall_seconds=60, disk_bytes=1 << 30)),
], ids=["memory", "processes", "disk"])
def test_a_job_over_a_limit_ends_naming_it(script, limit, tight, loose):
    result, _ = _limited("bwrap", script, loose)
    assert result.ok, result  # the same job within its limits runs: the probe is real
    result, message = _limited("bwrap", script, tight)
    assert not result.ok and result.limit == limit, (result, message)
    assert limit.split()[0] in message


def test_a_job_past_its_time_is_killed_with_its_processes():
    marker = f"ledgerflow-probe-{uuid.uuid4().hex}"
    script = f"import subprocess, time; subprocess.Popen(['{marker}', '300'], " \
             "executable='/bin/sleep', start_new_session=True); time.sleep(300)"
    result, message = _limited("bwrap", script, Limits(wall_seconds=2))
    assert result.limit == "time" and result.killed, result
    assert "time limit" in message
    _gone(marker)


def test_without_a_usable_sandbox_nothing_runs(settings):
    """A host without bwrap refuses with what is missing, and never falls back to `none`."""
    from config.sandbox import SandboxUnavailable, backend

    settings.LEDGERFLOW_BWRAP = "/nonexistent/bwrap"
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        backend().check()
    with jobs.job_directory("none") as job, pytest.raises(SandboxUnavailable):
        jobs.run(Spec(argv=["true"], workspace=job.workspace, stdout=job.stdout,
                      stderr=job.stderr, name=job.name), job)
