"""Project sources: archives refused rather than repaired when unsafe; Git at a ref."""

import io
import os
import stat
import subprocess
import tarfile
import zipfile

import pytest

from config.exceptions import ApplicationError
from projects.sources import GitSource, extract_archive, fetch_git, source_digest

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
    ("file:///nonexistent/repo", "", "git clone failed"),
    (None, "no-such-branch", "No branch, tag or commit"),
    (None, "--upload-pack=touch /tmp/pwned", "Invalid Git ref"),
    ("ftp://example.com/repo.git", "", "Unsupported Git URL"),
    ("ext::sh -c touch% /tmp/pwned", "", "Unsupported Git URL"),
])
def test_bad_git_sources_are_refused(tmp_path, repo, settings, url, ref, phrase):
    settings.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT = True
    with pytest.raises(ApplicationError, match=phrase):
        fetch_git(GitSource(url or f"file://{repo[0]}", ref), tmp_path / "checkout")


def test_local_repositories_need_the_operators_consent(tmp_path, repo, settings):
    settings.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT = False
    with pytest.raises(ApplicationError, match="LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT"):
        fetch_git(GitSource(f"file://{repo[0]}"), tmp_path / "checkout")
