"""The docker backend without a Docker engine: the `docker run` command line it builds (every
guarantee, never the host network, no worker variable, one writable host path), check()'s
message when the engine is missing, and the process handling against a fake docker CLI."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from config.sandbox import docker
from config.sandbox.common import LAUNCHER, LAUNCHER_SOURCE, SOCKET_DIR, TRACKING_SOCKET
from config.sandbox.docker import DockerBackend, docker_argv, sweep
from config.sandbox.spec import (
    ENV_MOUNT,
    RELAY_PORT,
    WORKSPACE,
    Limits,
    Mount,
    Network,
    Relay,
    SandboxUnavailable,
    Spec,
)

NO_ENGINE = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
             "Is the docker daemon running?")
WORKER_SECRETS = {"SECRET_KEY": "django-secret", "DATABASE_URL": "postgres://u:pw@db/ledgerflow",
                  "CELERY_BROKER_URL": "redis://broker:6379/0", "AWS_SECRET_ACCESS_KEY": "aws-secret"}


def make_spec(tmp_path: Path, **overrides) -> Spec:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    fields = {"argv": ["python", "train.py"], "workspace": workspace, "stdout": tmp_path / "out",
              "stderr": tmp_path / "err", "name": "ledgerflow-run-1", "image": "python:3.11-slim",
              "env": {"MLFLOW_RUN_ID": "abc"}}
    return Spec(**{**fields, **overrides})


def tracking_spec(tmp_path: Path, **overrides) -> Spec:
    return make_spec(tmp_path, network=Network.TRACKING,
                     relay=Relay(upstream="http://127.0.0.1:8000", token="run-token"), **overrides)


def values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def mounts(argv: list[str]) -> list[dict]:
    parsed = []
    for value in values(argv, "--mount"):
        fields = dict(item.partition("=")[::2] for item in value.split(","))
        parsed.append({**fields, "readonly": "readonly" in value.split(",")})
    return parsed


def env_of(argv: list[str]) -> dict[str, str]:
    pairs = [arg.removeprefix("--env=") for arg in argv if arg.startswith("--env=")]
    assert "--env" not in argv and "-e" not in argv  # only the --env=KEY=VALUE form
    return dict(pair.partition("=")[::2] for pair in pairs)


def test_it_builds_every_guarantee_into_the_command_line(tmp_path):
    spec = tracking_spec(tmp_path, limits=Limits(memory_bytes=1 << 30, processes=64,
                                                 cpu_seconds=600, file_bytes=1 << 28,
                                                 open_files=512, tmp_bytes=64 << 20))
    argv = docker_argv(spec, sockets=tmp_path, cpus=1.5)
    assert argv[:2] == ["docker", "run"]
    for flag in ("--rm", "--read-only", "--init"):
        assert flag in argv
    assert values(argv, "--name") == [spec.name]
    assert values(argv, "--network") == ["none"]
    assert values(argv, "--cap-drop") == ["ALL"]
    assert values(argv, "--security-opt") == ["no-new-privileges"]
    assert values(argv, "--user") == ["1000:1000"]
    assert values(argv, "--memory") == values(argv, "--memory-swap") == [str(1 << 30)]
    assert values(argv, "--pids-limit") == ["64"]
    assert values(argv, "--cpus") == ["1.5"]
    assert sorted(values(argv, "--ulimit")) == sorted(
        ["cpu=600:600", f"fsize={1 << 28}:{1 << 28}", "nofile=512:512", "core=0:0"])
    [tmp] = values(argv, "--tmpfs")
    assert tmp.startswith("/tmp:") and f"size={64 << 20}" in tmp and "nosuid" in tmp
    assert values(argv, "--workdir") == [WORKSPACE]


def test_it_runs_the_launcher_with_the_images_python(tmp_path):
    spec = tracking_spec(tmp_path)
    argv = docker_argv(spec, sockets=tmp_path)
    image_at = argv.index(spec.image)
    assert values(argv, "--entrypoint") == ["python3"]  # the image's ENTRYPOINT is replaced
    assert argv[image_at + 1:image_at + 4] == ["-I", "-S", LAUNCHER]
    config = json.loads(argv[image_at + 4])
    assert config["argv"] == ["python", "train.py"]
    assert config["forwards"] == [[RELAY_PORT, f"{SOCKET_DIR}/{TRACKING_SOCKET}"]]
    assert len(argv) == image_at + 5


@pytest.mark.parametrize("network", list(Network))
def test_it_never_uses_the_host_network_or_host_namespaces(tmp_path, network):
    spec = make_spec(tmp_path, network=network,
                     relay=Relay(upstream="http://x", token="t") if network == Network.TRACKING else None)
    argv = docker_argv(spec, sockets=tmp_path)
    assert values(argv, "--network") == ["none"]
    options = argv[:argv.index(spec.image)]
    assert "host" not in options and not any(o.endswith("=host") for o in options)
    for forbidden in ("--privileged", "--cap-add", "--net", "--network=", "--pid", "--userns",
                      "--uts", "--device", "--volumes-from", "--env-file", "-v", "-e", "-p"):
        assert not any(o == forbidden or o.startswith(forbidden + "=") for o in options)
    assert not any("docker.sock" in o or "unconfined" in o for o in options)
    assert values(argv, "--ipc") == ["private"]


def test_no_worker_variable_reaches_the_container(tmp_path, monkeypatch):
    for key, value in WORKER_SECRETS.items():
        monkeypatch.setenv(key, value)
    spec = tracking_spec(tmp_path)
    argv = docker_argv(spec, sockets=tmp_path)
    env = env_of(argv)
    assert env == docker.image_env(spec)
    assert env["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{RELAY_PORT}"
    assert env["MLFLOW_RUN_ID"] == "abc"
    for key, value in WORKER_SECRETS.items():
        assert key not in env
        assert not any(value in arg for arg in argv)
    assert "run-token" not in " ".join(argv)  # the token stays with the worker's relay
    # the docker CLI's own environment carries nothing to the container either
    assert not set(WORKER_SECRETS) & set(docker.client_env())


def test_only_the_workspace_is_writable(tmp_path):
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    spec = tracking_spec(tmp_path, mounts=(Mount(env_dir, ENV_MOUNT),))
    argv = docker_argv(spec, sockets=tmp_path / "sockets")
    assert "--read-only" in argv
    assert not any(a in ("-v", "--volume") or a.startswith("--volume") for a in argv)
    by_target = {m["target"]: m for m in mounts(argv)}
    assert set(by_target) == {WORKSPACE, LAUNCHER, SOCKET_DIR, ENV_MOUNT}
    assert [t for t, m in by_target.items() if not m["readonly"]] == [WORKSPACE]
    assert by_target[WORKSPACE]["source"] == str(spec.workspace.resolve())
    assert by_target[LAUNCHER]["source"] == str(LAUNCHER_SOURCE.resolve())
    assert by_target[SOCKET_DIR]["source"] == str((tmp_path / "sockets").resolve())
    assert all(m["type"] == "bind" for m in by_target.values())
    assert values(argv, "--tmpfs")[0].startswith("/tmp:")  # the only other writable path


def test_an_environment_build_also_writes_its_prefix(tmp_path):
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    spec = make_spec(tmp_path, writable_mounts=(Mount(prefix, ENV_MOUNT),))
    writable = [m["target"] for m in mounts(docker_argv(spec)) if not m["readonly"]]
    assert writable == [WORKSPACE, ENV_MOUNT]


def test_the_socket_directory_is_mounted_only_when_the_job_uses_it(tmp_path):
    assert SOCKET_DIR not in [m["target"] for m in mounts(docker_argv(make_spec(tmp_path),
                                                                      sockets=tmp_path))]
    with pytest.raises(ValueError, match="socket directory"):
        docker_argv(tracking_spec(tmp_path))


@pytest.mark.parametrize("user", ["0", "0:0", "root", "1000:0", "nobody", ""])
def test_it_refuses_a_root_or_named_user(tmp_path, user):
    with pytest.raises(ValueError, match="non-root"):
        docker_argv(make_spec(tmp_path), user=user)
    with pytest.raises(SandboxUnavailable, match="non-root"):
        DockerBackend(docker="docker", user=user or "0").check()


def test_it_refuses_a_spec_without_an_image_and_unsafe_mount_paths(tmp_path):
    with pytest.raises(ValueError, match="image"):
        docker_argv(make_spec(tmp_path, image=""))
    odd = tmp_path / "a,readonly=false"
    odd.mkdir()
    with pytest.raises(ValueError, match="comma"):
        docker_argv(make_spec(tmp_path, mounts=(Mount(odd, "/data"),)))


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI on this machine")
def test_the_docker_cli_accepts_the_command_line(tmp_path):
    """The CLI parses every flag before it calls the engine: pointed at no engine, a command
    line it accepts fails only on the connection (a control proves a bad flag fails first)."""
    def run(argv):
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
               "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env,
                              check=False)

    (tmp_path / "sockets").mkdir()
    argv = docker_argv(tracking_spec(tmp_path), sockets=tmp_path / "sockets", cpus=2, deadline=1)
    done = run(argv)
    assert done.returncode == 125 and "Cannot connect to the Docker daemon" in done.stderr
    control = run([*argv[:2], "--ulimit", "nosuch=1:1", *argv[2:]])
    assert "invalid ulimit type" in control.stderr


# ---- check(): what an operator reads when the engine is missing

def fake_docker(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "docker"
    script.write_text("#!/bin/bash\n" f'echo "$@" >> {tmp_path}/calls\n' + body)
    script.chmod(0o755)
    return script


def test_check_says_the_engine_is_unreachable(tmp_path, settings):
    settings.LEDGERFLOW_DOCKER = str(fake_docker(tmp_path, f'echo "{NO_ENGINE}" >&2\nexit 1\n'))
    with pytest.raises(SandboxUnavailable) as caught:
        DockerBackend().check()
    message = str(caught.value)
    assert "cannot reach a Docker engine" in message
    assert "Cannot connect to the Docker daemon" in message
    assert "apt-get install docker.io" in message and "LEDGERFLOW_SANDBOX" in message


def test_check_says_the_docker_command_is_missing(tmp_path, settings):
    settings.LEDGERFLOW_DOCKER = str(tmp_path / "no-such-docker")
    with pytest.raises(SandboxUnavailable, match=r"was not found .*Install Docker Engine"):
        DockerBackend().check()


def test_check_passes_when_the_engine_answers(tmp_path, settings):
    settings.LEDGERFLOW_DOCKER = str(fake_docker(tmp_path, "echo 28.2.2\n"))
    DockerBackend().check()
    assert (tmp_path / "calls").read_text().split() == ["version", "--format", "{{.Server.Version}}"]


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI on this machine")
def test_check_with_this_machines_docker_cli():
    probe = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                           capture_output=True, text=True, timeout=30, check=False)
    if probe.returncode == 0:
        pytest.skip("a Docker engine answers here")
    with pytest.raises(SandboxUnavailable, match="cannot reach a Docker engine"):
        DockerBackend(docker="docker").check()


# ---- the process, against a fake docker CLI that plays `run` on the host

def fake_engine(tmp_path: Path, run: str) -> str:
    """`run` execs the given shell (its pid is the 'container'); `kill` kills it."""
    return str(fake_docker(tmp_path, f"""case "$1" in
  run) echo $$ > {tmp_path}/container.pid; exec bash -c '{run}';;
  kill) kill -9 "$(cat {tmp_path}/container.pid)";;
esac
"""))


def test_it_reports_the_exit_status_and_output(tmp_path):
    spec = make_spec(tmp_path)
    process = DockerBackend(docker=fake_engine(tmp_path, "echo out; echo err >&2; exit 3")).start(spec)
    result = process.wait(timeout=30)
    assert (result.exit_code, result.limit, result.killed) == (3, "", False)
    assert result.usage.wall_seconds > 0
    assert spec.stdout.read_text() == "out\n" and spec.stderr.read_text() == "err\n"
    assert (tmp_path / "calls").read_text().startswith("run --rm --name ledgerflow-run-1 ")
    assert (spec.workspace / "home").is_dir()
    if os.geteuid() == 0:  # a root worker hands the workspace to the container's uid
        assert (spec.workspace.stat().st_uid, spec.workspace.stat().st_gid) == (1000, 1000)


def test_kill_goes_through_the_engine_and_names_the_limit(tmp_path):
    spec = make_spec(tmp_path)
    process = DockerBackend(docker=fake_engine(tmp_path, "sleep 30")).start(spec)
    assert process.poll() is None
    result = process.kill("cancelled")
    assert (result.killed, result.limit, result.signal) == (True, "cancelled", 9)
    calls = (tmp_path / "calls").read_text().splitlines()
    # a kill sent before the container exists misses it: the backend kills again until it ends
    assert {c for c in calls if not c.startswith("run ")} == {f"kill {spec.name}", f"rm --force {spec.name}"}
    assert calls[-1] == f"rm --force {spec.name}"


def test_it_stops_a_job_at_its_wall_time(tmp_path):
    spec = make_spec(tmp_path, limits=Limits(wall_seconds=1))
    result = DockerBackend(docker=fake_engine(tmp_path, "sleep 30")).start(spec).wait(timeout=30)
    assert (result.limit, result.killed) == ("time", True)


def test_it_stops_a_job_over_its_workspace_disk(tmp_path):
    spec = make_spec(tmp_path, limits=Limits(disk_bytes=1 << 20))
    fill = f"head -c 4000000 /dev/urandom > {spec.workspace}/big; sleep 30"
    result = DockerBackend(docker=fake_engine(tmp_path, fill)).start(spec).wait(timeout=30)
    assert (result.limit, result.killed) == ("disk", True)


def test_a_sigkill_it_did_not_send_is_the_memory_limit(tmp_path):
    spec = make_spec(tmp_path)
    result = DockerBackend(docker=fake_engine(tmp_path, "exit 137")).start(spec).wait(timeout=30)
    assert (result.exit_code, result.signal, result.limit) == (None, 9, "memory")


def test_sweep_removes_containers_past_their_deadline(tmp_path):
    engine = fake_docker(tmp_path, """case "$1" in
  ps) printf 'ledgerflow-old 100\\nledgerflow-new 4000000000\\nother \\n';;
esac
""")
    assert sweep(str(engine), now=1000) == ["ledgerflow-old"]
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith(f"ps --filter label={docker.LABEL}")
    assert calls[1] == "rm --force ledgerflow-old"
    labels = values(docker_argv(make_spec(tmp_path), deadline=1234), "--label")
    assert labels == [f"{docker.LABEL}=1", f"{docker.DEADLINE_LABEL}=1234"]
