"""Fetching a project's Git source in the sandbox.

The clone is a sandboxed job: it sees no credential of the worker (no HOME, SSH keys or Git
configuration of its own), reaches only the remote's host and port through the egress proxy
(resolved and checked by the worker: no loopback, private or link-local address), or, for a
local repository the operator allows, that one directory mounted read-only. What arrives is
data the worker then reads: a link in it that leads out of the tree is refused.
"""

import dataclasses
import os
from pathlib import Path

from django.conf import settings

from config.exceptions import ApplicationError
from config.sandbox import jobs
from config.sandbox.spec import WORKSPACE, Egress, Limits, Mount, Network, Spec
from projects.sources import git_remote

LOCAL_SOURCE = "/source"
FETCH_SECONDS = 600
SCRIPT = """
git clone --quiet --no-checkout -- "$LF_URL" /job/src
cd /job/src
commit=""
if [ -n "$LF_REF" ]; then
  for candidate in "origin/$LF_REF" "$LF_REF"; do
    commit=$(git rev-parse --verify --quiet "$candidate^{commit}") && break
  done
else
  commit=$(git rev-parse --verify --quiet "HEAD^{commit}")
fi
[ -n "$commit" ] || { echo "No branch, tag or commit '$LF_REF' in the repository." >&2; exit 3; }
git -c advice.detachedHead=false checkout --quiet "$commit"
printf %s "$commit" > /job/commit
"""


def refused(message: str) -> ApplicationError:
    return ApplicationError(message, kind="invalid", fields={"source": [message]})


def _git_config(scheme: str) -> str:
    """The clone's only Git configuration (its HOME's .gitconfig: nothing of the worker's),
    allowing the one transport the URL needs. A local repository belongs to another uid."""
    return (f"[protocol]\n\tallow = never\n[protocol \"{scheme}\"]\n\tallow = always\n"
            "[credential]\n\thelper =\n[core]\n\taskPass =\n\thooksPath = /dev/null\n"
            "[http]\n\tsslCAInfo = /etc/ssl/certs/ca-certificates.crt\n"
            "[safe]\n\tdirectory = *\n")


def fetch_git(url: str, ref: str, target: Path) -> str:
    """Clone `url` at `ref` (a branch, tag or commit; the default branch when empty) into
    `target`, a directory of a run's workspace; returns the resolved commit."""
    remote = git_remote(url)
    if ref.startswith("-") or "\n" in ref:
        raise refused(f"Invalid Git ref {ref!r}.")
    with jobs.job_directory("fetch") as job:
        mounts, egress, network = (), None, Network.NONE
        if remote.local_path is not None:
            mounts, url = (Mount(remote.local_path, LOCAL_SOURCE),), LOCAL_SOURCE
        else:
            network = Network.EGRESS
            egress = Egress(hosts=(remote.host,), ports=(remote.port,),
                            networks=tuple(settings.LEDGERFLOW_SANDBOX_EGRESS_NETWORKS),
                            allow_private=settings.LEDGERFLOW_SANDBOX_ALLOW_PRIVATE_EGRESS)
        base = jobs.limits(wall_seconds=FETCH_SECONDS)
        (job.workspace / "home").mkdir()
        (job.workspace / "home" / ".gitconfig").write_text(_git_config(remote.scheme))
        spec = Spec(argv=["/bin/sh", "-ec", SCRIPT], workspace=job.workspace, cwd=WORKSPACE,
                    stdout=job.stdout, stderr=job.stderr, name=job.name,
                    env={"LF_URL": url, "LF_REF": ref, "GIT_TERMINAL_PROMPT": "0",
                         "GIT_CONFIG_NOSYSTEM": "1"}, mounts=mounts, network=network,
                    egress=egress,
                    limits=dataclasses.replace(base, disk_bytes=_max_bytes(base)))
        result = jobs.run(spec, job)
        if not result.ok:
            raise refused(f"Fetching {remote.host or 'the repository'} failed: "
                          f"{jobs.describe(result, job, 'git')}")
        commit = (job.workspace / "commit").read_text().strip()
        _refuse_links_out(job.workspace / "src")
        (job.workspace / "src").rename(target)
    return commit


def _max_bytes(base: Limits) -> int:
    return min(base.disk_bytes, settings.LEDGERFLOW_PROJECT_MAX_BYTES * 2)


def _refuse_links_out(root: Path) -> None:
    """The worker reads the fetched tree (MLproject, environment specs, the digest): a
    symbolic link in it must not lead the worker's reads out of it."""
    real_root = root.resolve()
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            if path.is_symlink():
                try:
                    target = (path.parent / os.readlink(path)).resolve()
                except (OSError, RuntimeError):  # a loop
                    target = Path("/")
                if target != real_root and real_root not in target.parents:
                    raise refused(f"The repository's link {path.relative_to(root)} leads out "
                                  "of the project; links must stay inside it.")
