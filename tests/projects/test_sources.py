"""Project sources: archives refused rather than repaired when unsafe; Git at a ref, only from
remotes the operator allows."""

import io
import os
import stat
import subprocess
import tarfile
import zipfile

import pytest

from audit.models import AuditEvent
from config.exceptions import ApplicationError
from projects.models import ProjectRun
from projects.sources import (
    GitRemote,
    GitSource,
    check_git_url,
    extract_archive,
    fetch_git,
    git_remote,
    source_digest,
)

FILES = {"MLproject": "name: p\nentry_points: {main: {command: 'python train.py'}}\n",
         "train.py": "print('train')\n", "data/params.json": "{}\n"}


def make_tar(path, files=FILES, prefix="", extra=()):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.size else None)
    return path


def make_zip(path, files=FILES, prefix="", extra=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, text in files.items():
            zipped.writestr(prefix + name, text)
        for info, data in extra:
            zipped.writestr(info, data)
    return path


def test_tar_and_zip_unpack_to_the_same_project_and_digest(tmp_path):
    extract_archive(make_tar(tmp_path / "p.tar.gz"), tmp_path / "a")
    extract_archive(make_zip(tmp_path / "p.zip", prefix="project-1.0/"), tmp_path / "b")
    for name, text in FILES.items():
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text() == text
    assert source_digest(tmp_path / "a") == source_digest(tmp_path / "b")
    (tmp_path / "b" / "train.py").write_text("print('changed')\n")
    assert source_digest(tmp_path / "a") != source_digest(tmp_path / "b")


def tar_entry(name, kind=tarfile.REGTYPE, size=0, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, linkname
    return info


@pytest.mark.parametrize(("entry", "phrase"), [
    (tar_entry("../evil.py", size=1), "outside"),
    (tar_entry("/etc/evil.py", size=1), "outside"),
    (tar_entry("a/../../evil.py", size=1), "outside"),
    (tar_entry("link", tarfile.SYMTYPE, linkname="/etc/passwd"), "link"),
    (tar_entry("inner-link", tarfile.SYMTYPE, linkname="train.py"), "link"),
    (tar_entry("hard", tarfile.LNKTYPE, linkname="/etc/passwd"), "link"),
    (tar_entry("dev", tarfile.CHRTYPE), "special"),
    (tar_entry("fifo", tarfile.FIFOTYPE), "special"),
])
def test_unsafe_tar_entries_are_refused_and_nothing_escapes(tmp_path, entry, phrase):
    target = tmp_path / "out" / "project"
    with pytest.raises(ApplicationError) as refused:
        extract_archive(make_tar(tmp_path / "p.tar.gz", extra=[entry]), target)
    assert phrase in refused.value.message and "source" in refused.value.fields
    assert not (tmp_path / "out" / "evil.py").exists() and not (tmp_path / "evil.py").exists()
    assert not any(target.rglob("*")), "nothing is written before every entry is checked"


def deflated(name):
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def symlink_info(name):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(("extra", "phrase"), [
    ([(zipfile.ZipInfo("../evil.py"), "x")], "outside"),
    ([(zipfile.ZipInfo("/abs/evil.py"), "x")], "outside"),
    ([(zipfile.ZipInfo("dir\\..\\..\\evil.py"), "x")], "outside"),
    ([(zipfile.ZipInfo("C:/evil.py"), "x")], "outside"),
    ([(symlink_info("link"), "/etc/passwd")], "link"),
    ([(deflated("bomb.bin"), "\0" * (20 * 1024 * 1024))], "bomb"),
])
def test_unsafe_zip_entries_are_refused(tmp_path, extra, phrase):
    target = tmp_path / "out"
    with pytest.raises(ApplicationError) as refused:
        extract_archive(make_zip(tmp_path / "p.zip", extra=extra), target)
    assert phrase in refused.value.message
    assert not any(target.rglob("*"))
    assert not (tmp_path / "evil.py").exists()


def test_an_archive_larger_than_the_limit_is_refused(tmp_path, settings):
    settings.LEDGERFLOW_PROJECT_MAX_BYTES = 1000
    files = {**FILES, "big.txt": "y" * 2000}
    for archive in (make_tar(tmp_path / "p.tar.gz", files), make_zip(tmp_path / "p.zip", files)):
        with pytest.raises(ApplicationError, match="more than 1000 bytes"):
            extract_archive(archive, tmp_path / archive.name.replace(".", "-"))


def test_garbage_is_refused_as_unreadable(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(os.urandom(2048))
    with pytest.raises(ApplicationError, match="cannot be read"):
        extract_archive(junk, tmp_path / "out")


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()

    def git(*args):
        return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True,
                              text=True, env={**os.environ, "GIT_AUTHOR_NAME": "t",
                                              "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                                              "GIT_COMMITTER_EMAIL": "t@x"}).stdout.strip()

    git("init", "--quiet", "--initial-branch", "main")
    (path / "train.py").write_text("print(1)\n")
    git("add", ".")
    git("commit", "--quiet", "-m", "one")
    first = git("rev-parse", "HEAD")
    git("tag", "v1")
    git("checkout", "--quiet", "-b", "feature")
    (path / "train.py").write_text("print(2)\n")
    git("commit", "--quiet", "-am", "two")
    second = git("rev-parse", "HEAD")
    git("checkout", "--quiet", "main")
    (path / "train.py").write_text("print(3)\n")
    git("commit", "--quiet", "-am", "three")
    return path, {"first": first, "second": second, "third": git("rev-parse", "HEAD")}


@pytest.mark.parametrize(("ref", "commit", "text"), [
    ("", "third", "print(3)\n"), ("main", "third", "print(3)\n"),
    ("feature", "second", "print(2)\n"), ("v1", "first", "print(1)\n"),
    ("first", "first", "print(1)\n"),
])
def test_git_sources_check_out_a_branch_tag_or_commit(tmp_path, repo, settings, ref, commit,
                                                      text):
    settings.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT = True
    path, commits = repo
    ref = commits[ref] if ref == "first" else ref
    resolved = fetch_git(GitSource(f"file://{path}", ref), tmp_path / "checkout")
    assert resolved == commits[commit]
    assert (tmp_path / "checkout" / "train.py").read_text() == text


@pytest.mark.parametrize(("url", "ref", "phrase"), [
    ("file:///nonexistent/repo", "", "not an existing directory"),  # now refused before git runs
    ("EMPTY", "", "git clone failed"),                             # a directory, not a repo
    (None, "no-such-branch", "No branch, tag or commit"),
    (None, "--upload-pack=touch /tmp/pwned", "Invalid Git ref"),
    ("ftp://example.com/repo.git", "", "Unsupported Git URL"),
    ("ext::sh -c touch% /tmp/pwned", "", "Unsupported Git URL"),
])
def test_bad_git_sources_are_refused(tmp_path, repo, settings, url, ref, phrase):
    settings.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT = True
    if url == "EMPTY":
        (tmp_path / "empty").mkdir()
        url = f"file://{tmp_path / 'empty'}"
    with pytest.raises(ApplicationError, match=phrase):
        fetch_git(GitSource(url or f"file://{repo[0]}", ref), tmp_path / "checkout")


def test_local_repositories_need_the_operators_consent(tmp_path, repo, settings):
    settings.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT = False
    with pytest.raises(ApplicationError, match="LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT"):
        fetch_git(GitSource(f"file://{repo[0]}"), tmp_path / "checkout")


DEFAULT_HOSTS = ["github.com", "gitlab.com", "bitbucket.org", "codeberg.org"]
PRIVATE_LITERALS = ["127.0.0.1", "169.254.169.254", "[::1]", "::1", "10.0.0.1", "0.0.0.0",
                    "[::ffff:127.0.0.1]", "100.64.0.1"]


@pytest.fixture
def git_policy(settings):
    """The default policy, set explicitly (the environment of a test run may differ)."""
    settings.LEDGERFLOW_GIT_ALLOWED_SCHEMES = ["https"]
    settings.LEDGERFLOW_GIT_ALLOWED_HOSTS = list(DEFAULT_HOSTS)
    settings.LEDGERFLOW_SANDBOX_ALLOW_PRIVATE_EGRESS = False
    settings.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT = False
    return settings


@pytest.mark.parametrize(("url", "remote"), [
    ("https://github.com/mlflow/mlflow-example.git",
     GitRemote("https", "github.com", 443, "/mlflow/mlflow-example.git")),
    ("https://GitLab.com./group/sub/project", GitRemote("https", "gitlab.com", 443,
                                                        "/group/sub/project")),
    ("https://codeberg.org:443/a/b", GitRemote("https", "codeberg.org", 443, "/a/b")),
])
def test_https_urls_to_allowed_hosts_are_accepted(git_policy, url, remote):
    assert git_remote(url) == remote
    check_git_url(url)


@pytest.mark.parametrize(("url", "phrase"), [
    ("https://evil.example/a/b.git", "not one of the Git hosts"),
    ("https://github.com.evil.example/a/b", "not one of the Git hosts"),
    ("http://github.com/a/b.git", "http is not allowed"),
    ("git://github.com/a/b.git", "git is not allowed"),
    ("ssh://git@github.com/a/b.git", "ssh is not allowed"),
    ("git@github.com:a/b.git", "ssh is not allowed"),
    ("ext::sh -c touch% /tmp/pwned", "transport helpers"),
    ("fd::17", "transport helpers"),
    ("https::github.com/a/b", "transport helpers"),
    ("ftp://github.com/a/b.git", "not a Git transport"),
    ("file:///etc", "LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT"),
    ("/etc", "LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT"),
    ("relative/repo", "give an https:// URL"),
    ("--upload-pack=touch /tmp/pwned", "give an https:// URL"),
    ("https://user:secret@github.com/a/b.git", "never uses credentials"),
    ("https://ghp_token@github.com/a/b.git", "never uses credentials"),
    ("https://github.com:8443/a/b.git", "port 8443 of github.com is not allowed"),
    ("https://github.com/a/b.git?x=1", "no query or fragment"),
    ("https://evil.example#@github.com/a/b", "no query or fragment"),
    ("https://github.com\\@evil.example/a/b", "backslashes"),
    ("https://github.com/a b", "spaces"),
    ("https://github.com", "names no repository"),
    ("https://2130706433/a/b", "a number, not a host name"),
    ("https://0177.0.0.1/a/b", "a number, not a host name"),
    ("https://[127.0.0.1]/a/b", "in brackets"),
])
def test_urls_outside_the_policy_are_refused_naming_the_reason(git_policy, url, phrase):
    with pytest.raises(ApplicationError, match="Unsupported Git URL") as refused:
        check_git_url(url)
    assert phrase in refused.value.message and refused.value.fields == {
        "source": [refused.value.message]}


@pytest.mark.parametrize("host", PRIVATE_LITERALS)
def test_literal_private_hosts_are_refused_even_when_listed(git_policy, host):
    git_policy.LEDGERFLOW_GIT_ALLOWED_HOSTS = [*DEFAULT_HOSTS, *PRIVATE_LITERALS, ".0.0.1"]
    url = f"https://{host if not host.startswith('::') else f'[{host}]'}/a/b.git"
    with pytest.raises(ApplicationError, match="address; the server does not fetch from it"):
        check_git_url(url)


def test_private_egress_lets_listed_lan_hosts_in_but_never_metadata(git_policy):
    git_policy.LEDGERFLOW_SANDBOX_ALLOW_PRIVATE_EGRESS = True
    git_policy.LEDGERFLOW_GIT_ALLOWED_HOSTS = ["10.0.0.1", "169.254.169.254"]
    assert git_remote("https://10.0.0.1/a/b.git").host == "10.0.0.1"
    with pytest.raises(ApplicationError, match="cloud metadata"):
        check_git_url("https://169.254.169.254/latest/meta-data")
    with pytest.raises(ApplicationError, match="not one of the Git hosts"):
        check_git_url("https://10.0.0.2/a/b.git")  # still only listed hosts


def test_ssh_subdomains_and_extra_ports_only_as_the_operator_lists_them(git_policy):
    git_policy.LEDGERFLOW_GIT_ALLOWED_SCHEMES = ["https", "SSH"]
    git_policy.LEDGERFLOW_GIT_ALLOWED_HOSTS = [*DEFAULT_HOSTS, ".corp.example",
                                              "git.corp.example:8443", "[2001:db8::1]:2222"]
    assert git_remote("git@github.com:org/repo.git") == \
        GitRemote("ssh", "github.com", 22, "org/repo.git")
    assert git_remote("ssh://git@github.com/org/repo.git").port == 22
    assert git_remote("https://a.corp.example/x.git").host == "a.corp.example"
    assert git_remote("https://git.corp.example:8443/x.git").port == 8443
    with pytest.raises(ApplicationError, match=r"port 8443 of a\.corp\.example is not allowed"):
        check_git_url("https://a.corp.example:8443/x.git")
    with pytest.raises(ApplicationError, match="not one of the Git hosts"):
        check_git_url("https://corp.example/x.git")
    for url in ("ssh://git:pw@github.com/org/repo.git", "git:pw@github.com:org/repo.git"):
        with pytest.raises(ApplicationError, match="credentials"):
            check_git_url(url)
    with pytest.raises(ApplicationError, match="refused"):
        check_git_url("ssh://-oProxyCommand=touch%20x/repo")


def test_local_repositories_are_existing_directories_without_dot_dot(git_policy, tmp_path):
    git_policy.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT = True
    assert git_remote(f"file://{tmp_path}") == GitRemote("file", path=str(tmp_path),
                                                         local_path=tmp_path)
    assert git_remote(str(tmp_path)).local_path == tmp_path
    for url, phrase in [(f"file://{tmp_path}/../{tmp_path.name}", "without '..'"),
                        (f"file://{tmp_path}/missing", "not an existing directory"),
                        ("file://localhost/etc", "absolute path"),
                        (f"file://{tmp_path}/a%2e%2e", "'%'")]:
        with pytest.raises(ApplicationError, match=phrase):
            check_git_url(url)


URL = "/api/v1/projects/runs/"


def counts():
    return ProjectRun.objects.count(), AuditEvent.objects.count()


@pytest.mark.parametrize("uri", [
    "file:///etc", "https://evil.example/a/b.git", "http://github.com/a/b.git",
    "ssh://git@github.com/a/b.git", "git@github.com:a/b.git", "ext::sh -c touch% /tmp/pwned",
    "https://user:secret@github.com/a/b.git", "https://127.0.0.1/a/b.git",
    "https://169.254.169.254/latest/meta-data", "https://[::1]/a/b.git",
    "https://10.0.0.1/a/b.git",
])
def test_the_api_refuses_a_git_url_outside_the_policy_and_writes_nothing(api, personas,
                                                                          git_policy, uri):
    git_policy.LEDGERFLOW_GIT_ALLOWED_HOSTS = [*DEFAULT_HOSTS, *PRIVATE_LITERALS]
    before = counts()
    response = api(personas.alice).post(URL, {"uri": uri}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert "Unsupported Git URL" in body["fields"]["source"][0], body
    assert counts() == before


def test_the_api_accepts_an_allowed_https_url(api, personas, git_policy):
    before = counts()
    uri = "https://github.com/mlflow/mlflow-example.git"
    response = api(personas.alice).post(URL, {"uri": uri}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["uri"] == uri and response.json()["status"] == "QUEUED"
    assert counts()[0] == before[0] + 1
    # charlie, of another organization, sees none of it
    assert api(personas.charlie).get(f"{URL}{response.json()['id']}/").status_code == 404
