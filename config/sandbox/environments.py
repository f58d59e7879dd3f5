"""Environments untrusted code runs in (a project's entry points, a model's scorer), built in
the sandbox and mounted read-only.

- `local`: the runner environment, which the operator provides (LEDGERFLOW_RUNNER_ENV) or
  Ledgerflow builds from config/sandbox/runner-env.txt; never the service's own .venv.
- `python_env` (virtualenv): a uv virtualenv from the spec's dependencies.
- `conda_env`: a conda prefix, where the worker has conda (mounted read-only to build).
- `docker_env`: the project's image, run by the docker backend.

A build runs its installers (an sdist's build runs the package's code) as a sandboxed job of
its own: no service file, no secret, the package index hosts as its only network. Each
environment is kept under LEDGERFLOW_ENV_CACHE_DIR by the digest of what it was built from,
built once (a file lock across the worker's processes), and never written again.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from django.conf import settings

from config.sandbox import jobs
from config.sandbox.netpolicy import mirror_networks
from config.sandbox.spec import ENV_MOUNT, Egress, Mount, Network, Spec

RUNNER_SPEC = Path(__file__).with_name("runner-env.txt")
UV = "/opt/ledgerflow/bin/uv"
CONDA_HOSTS = ("conda.anaconda.org", "repo.anaconda.com")
BUILD_SECONDS = 1800
BUILD_FORMAT = "2"  # in every key: environments built another way are built anew


class EnvironmentFailure(Exception):
    """The environment cannot be had; the message is what the user sees."""


@dataclass(frozen=True)
class Environment:
    mounts: tuple[Mount, ...] = ()
    image: str = ""


def _uv_binary() -> Path:
    from uv import find_uv_bin

    return Path(find_uv_bin())


def _index_hosts() -> tuple[str, ...]:
    hosts = list(settings.LEDGERFLOW_SANDBOX_INDEX_HOSTS)
    for name in settings.LEDGERFLOW_SANDBOX_BUILD_ENV:
        for url in os.environ.get(name, "").split():
            if host := urlsplit(url).hostname:
                hosts.append(host)
    return tuple(dict.fromkeys(hosts))


def _build_env() -> dict[str, str]:
    passed = {k: os.environ[k] for k in settings.LEDGERFLOW_SANDBOX_BUILD_ENV if k in os.environ}
    # Bytecode compiled once at build: a read-only environment cannot keep what each run would
    # otherwise compile again (mlflow, sklearn, pandas: seconds per run, bench/RESULTS.md).
    return {**passed, "UV_CACHE_DIR": "/job/.uv-cache", "UV_PYTHON_DOWNLOADS": "never",
            "UV_COMPILE_BYTECODE": "1",
            "UV_NO_CONFIG": "1", "UV_LINK_MODE": "copy", "UV_SYSTEM_CERTS": "1",
            "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "CONDA_PKGS_DIRS": "/job/.conda-pkgs"}


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _own(path: Path) -> None:
    """A finished environment belongs to the worker again, not to the job that built it."""
    if os.geteuid() != 0:
        return
    for item in [path, *path.rglob("*")]:
        os.lchown(item, 0, 0)


def build(key: str, script: str, files: dict[str, bytes], *, hosts: tuple[str, ...],
          mounts: tuple[Mount, ...] = ()) -> Path:
    """The environment `key`, built by `script` (sh, in the sandbox, with `files` in its
    workspace and the prefix writable at ENV_MOUNT) unless it exists already."""
    cache = Path(settings.LEDGERFLOW_ENV_CACHE_DIR)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / key
    if (target / ".complete").exists():
        return target
    with _locked(cache / f"{key}.lock"):
        if (target / ".complete").exists():
            return target
        building = cache / f"{key}.building-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir()
        try:
            _run_build(key, script, files, hosts, mounts, building)
            _own(building)
            (building / ".complete").touch()
            building.rename(target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return target


def _run_build(key, script, files, hosts, mounts, building: Path) -> None:
    with jobs.job_directory("build") as job:
        for name, content in files.items():
            (job.workspace / name).write_bytes(content)
        spec = Spec(argv=["/bin/sh", "-ec", script], workspace=job.workspace,
                    stdout=job.stdout, stderr=job.stderr, name=job.name, env=_build_env(),
                    mounts=(Mount(_uv_binary(), UV), *mounts),
                    writable_mounts=(Mount(building, ENV_MOUNT),),
                    limits=jobs.limits(wall_seconds=BUILD_SECONDS), network=Network.EGRESS,
                    egress=Egress(hosts=hosts, networks=_networks(hosts),
                                  allow_private=settings.LEDGERFLOW_SANDBOX_ALLOW_PRIVATE_EGRESS))
        result = jobs.run(spec, job)
        if not result.ok:
            raise EnvironmentFailure(jobs.describe(result, job, f"Building environment {key}"))


def _networks(hosts: tuple[str, ...]) -> tuple[str, ...]:
    networks = list(settings.LEDGERFLOW_SANDBOX_EGRESS_NETWORKS)
    if settings.LEDGERFLOW_SANDBOX_TRUST_INDEX_DNS:
        networks += mirror_networks(hosts)
    return tuple(networks)


def uv_environment(key: str, python: str, requirements: str) -> Environment:
    script = (f'{UV} venv --quiet --allow-existing --python "$LF_PYTHON" {ENV_MOUNT}\n'
              f"{UV} pip install --quiet --python {ENV_MOUNT}/bin/python -r /job/requirements.txt")
    script = f"export LF_PYTHON={python!r}\n{script}" if python else script
    path = build(key, script, {"requirements.txt": requirements.encode()}, hosts=_index_hosts())
    return Environment(mounts=(Mount(path, ENV_MOUNT),))


def runner() -> Environment:
    """`--env-manager local`: the operator's runner environment, or the one built from
    config/sandbox/runner-env.txt."""
    if settings.LEDGERFLOW_RUNNER_ENV:
        path = Path(settings.LEDGERFLOW_RUNNER_ENV)
        if not (path / "bin").is_dir():
            raise EnvironmentFailure(f"LEDGERFLOW_RUNNER_ENV={path} is not a Python prefix "
                                     "(no bin/ in it).")
        return Environment(mounts=(Mount(path, ENV_MOUNT),))
    requirements = RUNNER_SPEC.read_text()
    key = "runner-" + hashlib.sha256(f"{BUILD_FORMAT}\n{requirements}".encode()).hexdigest()[:24]
    return uv_environment(key, "3.11", requirements)


def python_env(spec_path: Path) -> Environment:
    """A uv virtualenv for a python_env spec (its `python` and `dependencies`)."""
    try:
        spec = yaml.safe_load(spec_path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise EnvironmentFailure(f"{spec_path.name} cannot be read: {exc}") from None
    if not isinstance(spec, dict):
        raise EnvironmentFailure(f"{spec_path.name} must be a mapping.")
    deps = [str(d) for d in (spec.get("dependencies") or [])]
    python = str(spec.get("python") or "3.11")
    if any(d.startswith("-") or "\n" in d for d in deps) or "\n" in python:
        raise EnvironmentFailure(f"{spec_path.name}: dependencies are requirement specifiers, "
                                 "not pip options.")
    key = hashlib.sha256(f"{BUILD_FORMAT}\n{python}\n{sorted(deps)}".encode()).hexdigest()[:24]
    return uv_environment(key, python, "\n".join(deps) + "\n")


def conda_env(spec_path: Path) -> Environment:
    """A conda prefix for a conda_env spec, built with the worker's conda mounted read-only."""
    conda = next((shutil.which(c) for c in ("conda", "mamba", "micromamba") if shutil.which(c)),
                 None)
    if conda is None:
        raise EnvironmentFailure("This declares a conda environment, and this worker has no "
                                 "conda (looked for conda, mamba and micromamba); use "
                                 "env_manager 'local' or a worker that has conda.")
    install = Path(conda).resolve().parent.parent
    inside = f"/opt/conda/bin/{Path(conda).name}"
    args = "create --yes" if Path(conda).name == "micromamba" else "env create --quiet"
    content = spec_path.read_bytes()
    key = "conda-" + hashlib.sha256(BUILD_FORMAT.encode() + b"\n" + content).hexdigest()[:24]
    path = build(key, f"{inside} {args} --prefix {ENV_MOUNT} --file /job/conda.yaml",
                 {"conda.yaml": content}, hosts=(*_index_hosts(), *CONDA_HOSTS),
                 mounts=(Mount(install, "/opt/conda"),))
    return Environment(mounts=(Mount(path, ENV_MOUNT),))
