"""MLproject descriptors, as MLflow defines them (mlflow/projects/_project_spec.py), with the
structural and type checks MLflow leaves out: every error names the field at fault.

A project is a directory with an `MLproject` file (any case) naming the project, its entry
points (a command template with typed parameters and defaults) and at most one environment
(`python_env`, `conda_env`, `docker_env`); without one, a `python_env.yaml` or `conda.yaml`
next to it is used, as MLflow does. A directory without MLproject runs `*.py` and `*.sh`
entry points by convention. Commands are built as MLflow builds them: declared parameters are
substituted shell-quoted into the template, undeclared ones appended as `--key value`.
One key of our own, which MLflow ignores: an entry point with `safe_to_retry: true` is run
again when the worker running it is lost, instead of failing.
"""

import math
import os
import shlex
import string
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import yaml

from config.exceptions import ApplicationError

MLPROJECT = "mlproject"
PARAM_TYPES = ("string", "float", "int", "path", "uri")
ENV_KEYS = ("python_env", "conda_env", "docker_env")
DEFAULT_PYTHON_ENV, DEFAULT_CONDA_ENV = "python_env.yaml", "conda.yaml"
CONVENTION = {".py": "python", ".sh": "bash"}


def invalid(message: str, field_name: str) -> ApplicationError:
    return ApplicationError(message, kind="invalid", fields={field_name: [message]})


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str = "string"
    default: object = None

    def value(self, raw, where: str) -> str:
        """The value checked against the declared type, as the text the command receives."""
        text = str(raw)
        if self.type == "float":
            try:
                number = float(text)
            except ValueError:
                raise invalid(f"Parameter '{self.name}' must be a float, got {text!r}.",
                              where) from None
            if not math.isfinite(number):
                raise invalid(f"Parameter '{self.name}' must be a finite float.", where)
        elif self.type == "int":
            try:
                int(text)
            except ValueError:
                raise invalid(f"Parameter '{self.name}' must be an int, got {text!r}.",
                              where) from None
        elif self.type == "uri" and not urlparse(text).scheme:
            raise invalid(f"Parameter '{self.name}' must be a URI, got {text!r}.", where)
        elif self.type == "path" and not text:
            raise invalid(f"Parameter '{self.name}' must be a path.", where)
        return text


@dataclass(frozen=True)
class EntryPoint:
    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)
    safe_to_retry: bool = False  # Ledgerflow's key (MLflow ignores it): rerun a lost attempt

    def resolve(self, given: dict) -> tuple[dict[str, str], dict[str, str]]:
        """(declared parameter values, extra ones), checked; a missing one without a default
        is an error naming it."""
        missing = [n for n, p in self.parameters.items() if n not in given and p.default is None]
        if missing:
            raise invalid("No value given for missing parameters: "
                          + ", ".join(f"'{n}'" for n in missing), f"parameters.{missing[0]}")
        values = {}
        for name, parameter in self.parameters.items():
            raw = given.get(name, parameter.default)
            values[name] = parameter.value(raw, f"parameters.{name}")
        extra = {str(k): str(v) for k, v in given.items() if k not in self.parameters}
        return values, extra

    def command_for(self, given: dict, paths: dict[str, str] | None = None) -> str:
        """The shell command, as MLflow's EntryPoint.compute_command builds it. `paths` maps
        path/uri parameters to what they were resolved to (local files) before quoting."""
        values, extra = self.resolve(given)
        values.update(paths or {})
        quoted = {k: shlex.quote(v) for k, v in values.items()}
        parts = [self.command.format(**quoted)]
        parts += [f"--{shlex.quote(k)} {shlex.quote(v)}" for k, v in extra.items()]
        return " ".join(parts)


@dataclass(frozen=True)
class Project:
    name: str
    entry_points: dict[str, EntryPoint]
    env_type: str  # "python_env" | "conda_env" | "docker_env" | "local" (nothing declared)
    env_file: str = ""  # relative to the project root
    docker_image: str = ""

    def entry_point(self, name: str, root: Path | None = None) -> EntryPoint:
        if name in self.entry_points:
            return self.entry_points[name]
        suffix = PurePosixPath(name).suffix
        if suffix in CONVENTION and _inside(name) and (root is None or (root / name).is_file()):
            return EntryPoint(name, f"{CONVENTION[suffix]} {shlex.quote(name)}")
        raise invalid(f"Could not find '{name}' among the entry points "
                      f"{sorted(self.entry_points)} or as a .py or .sh file in the project.",
                      "entry_point")


def _inside(relative: str) -> bool:
    path = PurePosixPath(relative)
    return not path.is_absolute() and ".." not in path.parts


def _mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"'{where}' must be a mapping, got {type(value).__name__}.", where)
    return value


def _parameter(name: str, raw, where: str) -> Parameter:
    if isinstance(raw, str):
        raw = {"type": raw}
    raw = _mapping(raw, where)
    unknown = set(raw) - {"type", "default"}
    if unknown:
        raise invalid(f"Unknown key(s) {sorted(unknown)} in '{where}'.", where)
    kind = raw.get("type", "string")
    if kind not in PARAM_TYPES:
        raise invalid(f"'{where}.type' must be one of {', '.join(PARAM_TYPES)}, got {kind!r}.",
                      f"{where}.type")
    default = raw.get("default")
    parameter = Parameter(name, kind, default)
    if default is not None:
        parameter.value(default, f"{where}.default")
    return parameter


def _entry_point(name: str, raw, where: str) -> EntryPoint:
    raw = _mapping(raw, where)
    command = raw.get("command")
    if not isinstance(command, str) or not command.strip():
        raise invalid(f"'{where}.command' is required (a string).", f"{where}.command")
    parameters = {str(k): _parameter(str(k), v, f"{where}.parameters.{k}")
                  for k, v in _mapping(raw.get("parameters"), f"{where}.parameters").items()}
    try:
        placeholders = {f for _, f, _, _ in string.Formatter().parse(command) if f is not None}
    except ValueError as exc:
        raise invalid(f"'{where}.command' is not a valid template: {exc}.",
                      f"{where}.command") from None
    undeclared = sorted(p for p in placeholders if p.split(".")[0].split("[")[0] not in parameters)
    if undeclared:
        raise invalid(f"'{where}.command' uses undeclared parameter(s) {undeclared}.",
                      f"{where}.command")
    safe_to_retry = raw.get("safe_to_retry", False)
    if not isinstance(safe_to_retry, bool):
        raise invalid(f"'{where}.safe_to_retry' must be true or false.",
                      f"{where}.safe_to_retry")
    return EntryPoint(name, command, parameters, safe_to_retry)


def _env(root: Path, raw: dict) -> tuple[str, str, str]:
    declared = [k for k in ENV_KEYS if k in raw]
    if len(declared) > 1:
        raise invalid(f"A project declares one environment, not {declared}.", declared[1])
    if declared == ["docker_env"]:
        docker = _mapping(raw["docker_env"], "docker_env")
        if not isinstance(docker.get("image"), str) or not docker["image"]:
            raise invalid("'docker_env.image' is required.", "docker_env.image")
        return "docker_env", "", docker["image"]
    if declared:
        key = declared[0]
        relative = raw[key]
        if not isinstance(relative, str) or not _inside(relative):
            raise invalid(f"'{key}' must be a relative path inside the project.", key)
        if not (root / relative).is_file():
            raise invalid(f"'{key}' names {relative!r}, which is not in the project.", key)
        return key, relative, ""
    for key, default in (("python_env", DEFAULT_PYTHON_ENV), ("conda_env", DEFAULT_CONDA_ENV)):
        if (root / default).is_file():
            return key, default, ""
    return "local", "", ""


def load_project(root: Path) -> Project:
    """Read and check `root`'s MLproject (or take the directory by convention)."""
    found = [name for name in os.listdir(root) if name.lower() == MLPROJECT]
    raw: dict = {}
    if found:
        try:
            raw = yaml.safe_load((root / found[0]).read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise invalid(f"MLproject is not valid YAML: {exc}", "MLproject") from None
        raw = _mapping(raw, "MLproject")
    name = raw.get("name") or root.name
    if not isinstance(name, str):
        raise invalid("'name' must be a string.", "name")
    entry_points = {str(k): _entry_point(str(k), v, f"entry_points.{k}")
                    for k, v in _mapping(raw.get("entry_points"), "entry_points").items()}
    env_type, env_file, image = _env(root, raw)
    return Project(name, entry_points, env_type, env_file, image)
