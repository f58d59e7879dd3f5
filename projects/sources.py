"""Where a project's files come from: an uploaded archive (tar.gz or zip) or a Git repository
at a branch, tag or commit, unpacked into a fresh directory on the worker.

Archives are checked entry by entry before anything is written, and refused (never quietly
"repaired") when an entry would land outside the target (absolute paths, `..`, links
pointing out), is not a regular file or directory, or when the whole would unpack to more
than the limits allow (archive bombs). tar uses the standard library's `data` extraction
filter on top of these checks.

Git URLs are checked against the operator's policy (`git_remote`: allowed schemes and hosts,
no credentials, no transport helpers, no literal private addresses, local repositories only
with the operator's consent) when a run is submitted and again before the fetch.
"""

import hashlib
import os
import re
import stat
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from django.conf import settings

from config.exceptions import ApplicationError
from config.sandbox.netpolicy import address_refusal, canonical_host, host_allowed, parse_ip

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


# Git's own default ports: a URL naming another port is refused unless an allow-list entry
# names that port ("git.example.org:8443"), so the fetch's egress proxy opens exactly it.
DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
_HELPER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.-]*::")  # Git's `<transport>::<address>`
_SCP = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]/]*\]|[^@/:\[\]]+):(?P<path>[^:].*)$")
_SSH_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class GitRemote:
    """A checked Git source: a remote (the host and port the fetch's egress proxy may open)
    or, only where the operator allows local repositories, a directory (`local_path`)."""

    scheme: str                       # https, http, ssh, git; "file" for a local repository
    host: str = ""                    # canonical (lower case, IDNA; an IP without brackets)
    port: int = 0
    path: str = ""
    local_path: Path | None = None


def _unsupported(url: str, reason: str) -> ApplicationError:
    return refused(f"Unsupported Git URL {url!r}: {reason}")


def _local_remote(url: str) -> GitRemote:
    """A local repository: read from the worker's own disk, so only with the operator's
    consent, and only a plain absolute path to an existing directory."""
    if not settings.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT:
        raise _unsupported(url, "local repositories are read only where "
                                "LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT is set; give an https:// URL.")
    text = url[len("file://"):] if url[:7].lower() == "file://" else url
    # `%` is refused rather than decoded: what is checked must be what Git opens
    if not text.startswith("/") or "%" in text or ".." in PurePosixPath(text).parts:
        raise _unsupported(url, "a local repository is an absolute path without '..' or '%'.")
    if not Path(text).is_dir():
        raise _unsupported(url, f"{text} is not an existing directory.")
    return GitRemote(scheme="file", path=text, local_path=Path(text))


def _split_host_port(url: str, hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        host, bracket, rest = hostport.partition("]")
        host += bracket
    else:
        host, colon, rest = hostport.partition(":")
        rest = colon + rest
    if not rest:
        return host, None
    digits = rest[1:]
    if not rest.startswith(":") or not digits.isascii() or not digits.isdigit() \
            or not 0 < int(digits) < 65536:
        raise _unsupported(url, f"{hostport!r} is not a host and port.")
    return host, int(digits)


def _url_remote(url: str) -> GitRemote:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _unsupported(url, f"{exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _unsupported(url, f"{scheme}:// is not a Git transport this server fetches "
                                "over; give an https:// URL.")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise _unsupported(url, "a Git URL has no query or fragment.")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and (scheme != "ssh" or not _SSH_USER.match(userinfo)):
        raise _unsupported(url, "it holds credentials. The server never uses credentials to "
                                "fetch projects: give the URL of a repository it may read "
                                "without them.")
    host, port = _split_host_port(url, hostport)
    return _remote(url, scheme, host, port, parts.path)


def _remote(url: str, scheme: str, host_text: str, port: int | None, path: str) -> GitRemote:
    """The checks every remote passes: scheme and host allowed, the host no literal private
    address, the port the scheme's default or one an allow-list entry names. DNS is not
    consulted here: the egress proxy checks the resolved addresses at fetch time."""
    allowed_schemes = [name.strip().lower() for name in settings.LEDGERFLOW_GIT_ALLOWED_SCHEMES]
    if scheme not in allowed_schemes:
        raise _unsupported(url, f"{scheme} is not allowed on this server (allowed: "
                                f"{', '.join(allowed_schemes) or 'none'}).")
    try:
        host = canonical_host(host_text)
    except ValueError as exc:
        raise _unsupported(url, f"the host {host_text!r} is refused: {exc}.") from None
    address = parse_ip(host)
    if address is not None:
        reason = address_refusal(
            address, allow_private=settings.LEDGERFLOW_SANDBOX_ALLOW_PRIVATE_EGRESS)
        if reason:
            raise _unsupported(url, f"{host} is a {reason} address; the server does not fetch "
                                    "from it.")
    ports = _allowed_ports(host, scheme)
    if not ports:
        raise _unsupported(url, f"{host} is not one of the Git hosts this server fetches from "
                                "(LEDGERFLOW_GIT_ALLOWED_HOSTS).")
    port = port or DEFAULT_PORTS[scheme]
    if port not in ports:
        raise _unsupported(url, f"port {port} of {host} is not allowed (allowed: "
                                f"{', '.join(str(p) for p in sorted(ports))}).")
    if path.strip("/") == "":
        raise _unsupported(url, "it names no repository.")
    return GitRemote(scheme=scheme, host=host, port=port, path=path)


def _allowed_ports(host: str, scheme: str) -> set[int]:
    """The ports of `host` the allow-list opens: the scheme's default for a plain entry, the
    entry's own for `name:port` (`[v6]:port`). Empty: the host is not allowed."""
    ports = set()
    for entry in settings.LEDGERFLOW_GIT_ALLOWED_HOSTS:
        name, port = entry, None
        head, colon, tail = entry.rpartition(":")
        if colon and tail.isascii() and tail.isdigit() and (
                ":" not in head or (head.startswith("[") and head.endswith("]"))):
            name, port = head, int(tail)
        if host_allowed(host, [name]):
            ports.add(port or DEFAULT_PORTS[scheme])
    return ports


def git_remote(url: str) -> GitRemote:
    """Check a project's Git URL against the operator's policy and say what it names.

    Accepted: `<scheme>://host[:port]/path` with an allowed scheme (https by default; ssh://
    and scp-like `user@host:path` only when "ssh" is allowed) and an allowed host; never
    credentials, transport helpers (`ext::`, `fd::`, any `<name>::`) or other schemes; literal
    private, loopback or link-local addresses only with LEDGERFLOW_SANDBOX_ALLOW_PRIVATE_EGRESS;
    local repositories (`file://` or an absolute path) only with
    LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT."""
    if _HELPER.match(url):
        raise _unsupported(url, "Git transport helpers (<name>::) are never used; give an "
                                "https:// URL.")
    if not url or len(url) > 1000 or url.startswith("-"):  # "-": an option to git or ssh
        raise _unsupported(url, "give an https:// URL.")
    if "\\" in url or any(ch <= " " or ch == "\x7f" for ch in url):
        raise _unsupported(url, "a Git URL has no spaces, control characters or backslashes.")
    if url.startswith("/") or url[:5].lower() == "file:":
        return _local_remote(url)
    if "://" in url:
        return _url_remote(url)
    if scp := _SCP.match(url):  # Git reads `[user@]host:path` as ssh
        if scp["user"] is not None and not _SSH_USER.match(scp["user"]):
            raise _unsupported(url, "it holds credentials or an invalid user name.")
        return _remote(url, "ssh", scp["host"], None, scp["path"])
    raise _unsupported(url, "give an https:// URL.")


def check_git_url(url: str) -> None:
    """Refuse (400, field `source`) a Git URL the operator's policy does not allow."""
    git_remote(url)


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
