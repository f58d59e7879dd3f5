"""Where a project's files come from: an uploaded archive (tar.gz or zip) or a Git repository
at a branch, tag or commit, unpacked into a fresh directory on the worker.

Archives are checked entry by entry before anything is written, and refused (never quietly
"repaired") when an entry would land outside the target (absolute paths, `..`, links
pointing out), is not a regular file or directory, or when the whole would unpack to more
than the limits allow (archive bombs). tar uses the standard library's `data` extraction
filter on top of these checks.
"""

import hashlib
import os
import stat
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings

from config.exceptions import ApplicationError

MAX_ENTRIES = 20_000
MAX_RATIO = 200  # uncompressed / compressed, per zip entry over 1 MiB
CHUNK = 1024 * 1024


def refused(message: str) -> ApplicationError:
    return ApplicationError(message, kind="invalid", fields={"source": [message]})


def _max_bytes() -> int:
    return settings.LEDGERFLOW_PROJECT_MAX_BYTES


def _check_name(name: str) -> None:
    path = PurePosixPath(name)
    if not name or "\\" in name or "\x00" in name or path.is_absolute() or ".." in path.parts \
            or (len(name) > 1 and name[1] == ":"):
        raise refused(f"The archive entry {name!r} would be written outside the project.")


def _extract_tar(archive: Path, target: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members, total = tar.getmembers(), 0
            if len(members) > MAX_ENTRIES:
                raise refused(f"The archive has more than {MAX_ENTRIES} entries.")
            for member in members:
                _check_name(member.name)
                if not (member.isfile() or member.isdir()):
                    raise refused(f"The archive entry {member.name!r} is a link or special "
                                  "file; only files and directories are accepted.")
                total += member.size
                if total > _max_bytes():
                    raise refused(f"The archive unpacks to more than {_max_bytes()} bytes.")
                tarfile.data_filter(member, str(target))  # the standard library's own checks
            tar.extractall(target, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise refused(f"The archive was refused: {exc}") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise refused(f"The archive cannot be read: {exc}") from None


def _extract_zip(archive: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            infos, total = zipped.infolist(), 0
            if len(infos) > MAX_ENTRIES:
                raise refused(f"The archive has more than {MAX_ENTRIES} entries.")
            for info in infos:
                _check_name(info.filename)
                kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no type recorded (a file)
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise refused(f"The archive entry {info.filename!r} is a link or special "
                                  "file; only files and directories are accepted.")
                total += info.file_size
                if total > _max_bytes():
                    raise refused(f"The archive unpacks to more than {_max_bytes()} bytes.")
                if info.file_size > CHUNK and info.file_size > MAX_RATIO * max(
                        info.compress_size, 1):
                    raise refused(f"The archive entry {info.filename!r} expands more than "
                                  f"{MAX_RATIO} times: refused as a possible archive bomb.")
            for info in infos:
                destination = target / info.filename
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with zipped.open(info) as src, open(destination, "wb") as out:
                    while chunk := src.read(CHUNK):
                        written += len(chunk)
                        if written > info.file_size:  # the header lied
                            raise refused(f"The archive entry {info.filename!r} is larger "
                                          "than it declares.")
                        out.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise refused(f"The archive cannot be read: {exc}") from None


def extract_archive(archive: Path, target: Path) -> None:
    """Unpack a .tar.gz (or any tar) or .zip into the empty directory `target`."""
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, target)
    else:
        _extract_tar(archive, target)
    entries = [p for p in target.iterdir()]
    # an archive of one top-level directory holds the project in that directory
    if len(entries) == 1 and entries[0].is_dir():
        inner = entries[0]
        for child in inner.iterdir():
            child.rename(target / child.name)
        inner.rmdir()


def source_digest(root: Path) -> str:
    """SHA-256 over every file's path and content (sorted, `.git` left out): the same files
    give the same digest, however they arrived."""
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in
                   p.relative_to(root).parts)
    for path in files:
        file_hash = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                file_hash.update(chunk)
        digest.update(f"{path.relative_to(root).as_posix()}\0{file_hash.hexdigest()}\n".encode())
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class GitSource:
    url: str
    ref: str = ""  # branch, tag or commit; empty: the default branch


def _git(*args: str, cwd: Path | None = None, timeout: int = 300, check: bool = True) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(Path.home())),
           "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True,  # noqa: S603, S607
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise refused(f"git {args[0]} took longer than {timeout} s.") from None
    if done.returncode != 0:
        if not check:
            return ""
        raise refused(f"git {args[0]} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def check_git_url(url: str) -> None:
    """https and ssh anywhere; local repositories (file:// or a path) only when the operator
    allows them, since they read the worker's own disk."""
    if url.startswith(("https://", "ssh://", "git@")):
        return
    if url.startswith(("file://", "/")) and settings.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT:
        return
    raise refused(f"Unsupported Git URL {url!r}: use https:// or ssh:// (local repositories "
                  "only where LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT is set).")


def fetch_git(source: GitSource, target: Path) -> str:
    """Clone `source` into `target` and check out its ref (a branch, tag or commit; the
    default branch when empty); returns the resolved commit."""
    check_git_url(source.url)
    if source.ref.startswith("-"):
        raise refused(f"Invalid Git ref {source.ref!r}.")
    _git("clone", "--quiet", "--no-checkout", "--", source.url, str(target))
    commit = ""
    for candidate in ([f"origin/{source.ref}", source.ref] if source.ref else ["HEAD"]):
        commit = _git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", cwd=target,
                      check=False)
        if commit:
            break
    if not commit:
        raise refused(f"No branch, tag or commit {source.ref!r} in {source.url}.")
    _git("-c", "advice.detachedHead=false", "checkout", "--quiet", commit, cwd=target)
    return commit
