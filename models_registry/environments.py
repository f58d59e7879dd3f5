"""The environment a model is loaded in: its own, built in the sandbox from what it was logged
with, unless the runner environment already has all of it.

LEDGERFLOW_MODEL_ENV_MANAGER:
- `auto` (default): the runner environment (config/sandbox/runner-env.txt, or the operator's
  LEDGERFLOW_RUNNER_ENV) when it satisfies every requirement in the model's
  `requirements.txt`, else a virtualenv built from that file (as `virtualenv`). Most models
  logged with the libraries the runner has (MLflow, scikit-learn, skops, NumPy, pandas) need
  no build at all.
- `virtualenv`: always a uv virtualenv from `requirements.txt`, with the Python of
  `python_env.yaml` (major.minor), like `mlflow models serve --env-manager virtualenv`.
- `conda`: the model's `conda.yaml`, where the worker has conda.
- `local`: the runner environment, whatever the model asks for.

A scorer needs MLflow's python_function loader only, so a requirement on `mlflow` is met by
`mlflow-skinny` of the same version (which is what a built environment installs instead: the
tracking server's dependencies are no use in a sandbox without network). Environments are
keyed by what they are built from and shared by every model that asks for the same.
"""

import functools
import hashlib
import re
from importlib import metadata
from pathlib import Path

import yaml
from django.conf import settings
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from config.sandbox.environments import (
    BUILD_FORMAT,
    Environment,
    EnvironmentFailure,
    conda_env,
    runner,
    uv_environment,
)
from config.sandbox.spec import ENV_MOUNT

MANAGERS = ("auto", "virtualenv", "conda", "local")
PYTHON = re.compile(r"^\d+\.\d+")
ALIASES = {"mlflow": ("mlflow", "mlflow-skinny")}


def requirements_of(model_dir: Path) -> list[Requirement]:
    """The model's requirements.txt, as requirement specifiers only (no pip options, no
    files, no URLs: a model cannot point a build at an index or a path of its choosing)."""
    path = model_dir / "requirements.txt"
    if not path.is_file():
        return []
    found = []
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise EnvironmentFailure(f"requirements.txt: '{line}' is a pip option; a model's "
                                     "requirements may only name packages and versions.")
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise EnvironmentFailure(f"requirements.txt: '{line}' is not a requirement: {exc}") \
                from None
        if requirement.url:
            raise EnvironmentFailure(f"requirements.txt: '{line}' names a URL; only packages "
                                     "from the index are installed.")
        found.append(requirement)
    return found


@functools.lru_cache(maxsize=8)
def _installed(prefix: str) -> dict[str, str]:
    """Distribution name -> version in an environment prefix (read, never imported)."""
    site = list(Path(prefix).glob("lib/python3*/site-packages"))
    return {canonicalize_name(d.metadata["Name"]): d.version
            for d in metadata.distributions(path=[str(s) for s in site]) if d.metadata["Name"]}


def satisfied(requirements: list[Requirement], installed: dict[str, str]) -> list[str]:
    """The requirements `installed` does not meet (empty: it meets all of them)."""
    missing = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        versions = [installed[n] for n in ALIASES.get(name, (name,)) if n in installed]
        if not any(requirement.specifier.contains(v, prereleases=True) for v in versions):
            missing.append(str(requirement))
    return missing


def _python_of(model_dir: Path) -> str:
    path = model_dir / "python_env.yaml"
    try:
        spec = yaml.safe_load(path.read_text()) if path.is_file() else {}
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise EnvironmentFailure(f"python_env.yaml cannot be read: {exc}") from None
    match = PYTHON.match(str((spec or {}).get("python") or "")) if isinstance(spec, dict) \
        else None
    return match.group(0) if match else "3.11"


def _built(model_dir: Path, requirements: list[Requirement]) -> Environment:
    python = _python_of(model_dir)
    lines = sorted(str(r) if canonicalize_name(r.name) != "mlflow"
                   else str(r).replace(r.name, "mlflow-skinny", 1) for r in requirements)
    key = "model-" + hashlib.sha256(
        f"{BUILD_FORMAT}\n{python}\n{lines}".encode()).hexdigest()[:24]
    return uv_environment(key, python, "\n".join(lines) + "\n")


def model_environment(model_dir: Path) -> Environment:
    """Where the model in `model_dir` (a package, or a copy being packaged) is loaded."""
    manager = settings.LEDGERFLOW_MODEL_ENV_MANAGER
    if manager not in MANAGERS:
        raise EnvironmentFailure(f"LEDGERFLOW_MODEL_ENV_MANAGER must be one of "
                                 f"{', '.join(MANAGERS)}, not {manager!r}.")
    if manager == "local":
        return runner()
    if manager == "conda":
        if not (model_dir / "conda.yaml").is_file():
            raise EnvironmentFailure("The model has no conda.yaml to build from.")
        return conda_env(model_dir / "conda.yaml")
    requirements = requirements_of(model_dir)
    if manager == "auto":
        environment = runner()
        prefix = next(m.source for m in environment.mounts if m.target == ENV_MOUNT)
        if not satisfied(requirements, _installed(str(prefix))):
            return environment
    return _built(model_dir, requirements)
