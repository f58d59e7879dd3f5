"""The README's tour, run as a reader would run it: every command block, literally, in order.

`tests/system/test_make_run.py` calls `run_tour` against its running `make run`; the unit tests
in `tests/system/test_readme_tour.py` check the rules below without a server.

Which fenced blocks of README.md run:
- A block tagged `sh`, `bash` or `shell` is run by bash; a block tagged `python` is run by
  `python` (the first on PATH: the clone's `.venv`, which has what the README tells a reader to
  `pip install`). An untagged block is text (the banner `make run` prints) and never runs; any
  other tag is an error, so that no command block is left out by accident.
- A command block is not run only when the last non-blank line before its opening fence is
  `<!-- tour: not run (the reason) -->`: `make run` itself, `make test`, what needs a network
  beyond loopback. A marker anywhere else, or one without a reason, is an error.
- Every other block runs and must succeed.

How they run: ONE bash session for the whole README (`set -euo pipefail`, working directory the
clone), as a reader pasting the blocks into one terminal: a variable a block sets (a run id, a
disclosure id) is there for the blocks after it. The session starts from the caller's
environment with the clone's `.venv/bin` first on PATH, and its first input is the banner's
`export` lines, pasted as the banner says (LEDGERFLOW_URL, TOKEN_*, PASSWORD_*,
MLFLOW_TRACKING_URI, MLFLOW_TRACKING_TOKEN). Each block is `source`d from a file with its
stdout and stderr (together, as a terminal shows them) going to a file of its own and stdin
from /dev/null (the scripts and outputs stay in the caller's `workdir`). A block that fails
ends the session (errexit), so the blocks after it do not run.

One strictness of the harness that the README does not spell out: curl reads a `.curlrc`
(CURL_HOME) adding `--fail-with-body --show-error`, so an HTTP error fails its block instead of
going by as a JSON message that a reader would have seen on screen.
"""

import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SHELL_TAGS = ("sh", "bash", "shell")
RUN_TAGS = (*SHELL_TAGS, "python")
TEXT_TAGS = ("",)  # shown output, never commands
MARKER = re.compile(r"^<!--\s*tour:\s*not run\s*\((?P<reason>[^()]*\S[^()]*)\)\s*-->$")
FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<tag>[\w+-]*)")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*$")
# A port the reader's `make run` may not listen on (`make run PORT=8080`): in a command, the
# banner's $LEDGERFLOW_URL says where it is.
HARD_CODED = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\]):\d+")
DONE = "readme-tour-block-done"
BLOCK_TIMEOUT = 600  # seconds: a project run that waits, a disclosure being rendered


class TourError(ValueError):
    """README.md breaks a rule of the tour (see the module docstring)."""


@dataclass(frozen=True)
class Block:
    """A fenced block of the README: its tag, text, the heading it is under and where."""

    heading: str
    tag: str
    text: str
    line: int  # of the opening fence, 1-based
    not_run: str | None = None  # the marker's reason

    @property
    def is_command(self) -> bool:
        return self.tag in RUN_TAGS

    @property
    def runs(self) -> bool:
        return self.is_command and self.not_run is None

    def where(self) -> str:
        if not self.line:  # not the README's: the banner's export lines
            return self.heading
        return f"README.md line {self.line}, under {self.heading!r}"


def parse(markdown: str) -> list[Block]:
    """Every fenced block, with the heading it is under and its not-run marker, if any.
    Raises TourError for a marker that is malformed or precedes no block."""
    blocks, heading, marker = [], "(before any heading)", None
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line, index = lines[index], index + 1
        opened = FENCE.match(line)
        if opened:
            closing, body, start = opened["fence"], [], index
            while index < len(lines) and not lines[index].startswith(closing):
                body.append(lines[index])
                index += 1
            if index == len(lines):
                raise TourError(f"README.md line {start}: the block is never closed")
            index += 1
            reason = marker[1] if marker else None
            blocks.append(Block(heading, opened["tag"].lower(), "\n".join(body) + "\n", start,
                                reason))
            marker = None
            continue
        if marker and line.strip():
            raise TourError(f"README.md line {marker[0]}: a tour marker must be the last line "
                            f"before a block's opening fence")
        if line.strip().startswith("<!--") and "tour:" in line:
            found = MARKER.match(line.strip())
            if not found:
                raise TourError(f"README.md line {index}: write the marker as "
                                f"`<!-- tour: not run (the reason) -->`, not {line.strip()!r}")
            marker = (index, found["reason"].strip())
        elif heading_found := HEADING.match(line):
            heading = heading_found["title"]
    if marker:
        raise TourError(f"README.md line {marker[0]}: a tour marker precedes no block")
    return blocks


def problems(blocks: list[Block]) -> list[str]:
    """What breaks the tour's rules: a tag it does not know, a marker on a text block, a
    command with a hard-coded address instead of $LEDGERFLOW_URL."""
    found = []
    for block in blocks:
        if block.tag not in RUN_TAGS + TEXT_TAGS:
            found.append(f"{block.where()}: unknown tag {block.tag!r} (tag commands "
                         f"{', '.join(RUN_TAGS)}; leave output untagged)")
        if block.not_run and not block.is_command:
            found.append(f"{block.where()}: a not-run marker on a block that is not a command")
        if block.is_command and HARD_CODED.search(block.text):
            found.append(f"{block.where()}: {HARD_CODED.search(block.text)[0]} hard-coded; "
                         f"use $LEDGERFLOW_URL")
    return found


def blocks_to_run(markdown: str) -> list[Block]:
    """The blocks the tour runs, in order; TourError when the README breaks a rule."""
    blocks = parse(markdown)
    if broken := problems(blocks):
        raise TourError("\n".join(broken))
    return [block for block in blocks if block.runs]


def banner_exports(banner: str) -> Block:
    """The banner's lines to paste, as the first block of the session."""
    exports = [line.strip() for line in banner.splitlines() if line.strip().startswith("export ")]
    if not exports:
        raise TourError(f"the banner has no export lines to paste:\n{banner}")
    return Block("the banner of `make run`: its export lines", "sh", "\n".join(exports) + "\n", 0)


@dataclass(frozen=True)
class Result:
    block: Block
    ok: bool
    status: str  # "exit 0", "exit 22", "timed out after 600s"
    output: str
    seconds: float

    def report(self, tail: int = 4000) -> str:
        return (f"{self.block.where()} ({self.block.tag}, {self.status}, "
                f"{self.seconds:.1f}s):\n{self.block.text}"
                f"--- the end of its stdout and stderr ---\n{self.output[-tail:]}")


class Session:
    """One bash process fed the blocks one at a time; see the module docstring."""

    def __init__(self, cwd: Path, env: dict, workdir: Path):
        self.workdir, self.count = workdir, 0
        self.log = (workdir / "session.log").open("wb")
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._send("set -euo pipefail")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.decode(errors="replace").strip())
        self.lines.put(None)  # the shell ended

    def _send(self, text: str) -> None:
        self.proc.stdin.write(f"{text}\n".encode())
        self.proc.stdin.flush()

    def run(self, block: Block, timeout: float = BLOCK_TIMEOUT) -> Result:
        """Run one block in the session; the Result says whether it succeeded."""
        self.count += 1
        stem = self.workdir / f"block-{self.count:02d}"
        script, out = stem.with_suffix(".sh"), stem.with_suffix(".out")
        if block.tag == "python":
            stem.with_suffix(".py").write_text(block.text)
            script.write_text(f"python {shlex.quote(str(stem.with_suffix('.py')))}\n")
        else:
            script.write_text(block.text)
        started = time.monotonic()
        if self.proc.poll() is not None:
            return Result(block, False, f"not run: the session ended ({self.proc.returncode})",
                          "", 0.0)
        self._send(f"source {shlex.quote(str(script))} >{shlex.quote(str(out))} 2>&1 "
                   f"</dev/null\necho {DONE} {self.count} $?")
        status = self._wait(timeout)
        output = out.read_text(errors="replace") if out.exists() else ""
        return Result(block, status == "exit 0", status, output, time.monotonic() - started)

    def _wait(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.close()
                return f"timed out after {timeout:.0f}s"
            if line is None:  # errexit: the block failed and took the session with it
                return f"exit {self.proc.wait()}"
            if line == f"{DONE} {self.count} 0":
                return "exit 0"

    def close(self) -> None:
        """End the session and whatever it started (its own process group)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.log.close()


def tour_environment(clone: Path, env: dict, workdir: Path) -> dict:
    """The caller's environment, the clone's .venv/bin first on PATH, curl strict."""
    (workdir / ".curlrc").write_text("fail-with-body\nshow-error\n")
    return {**env, "PATH": f"{clone / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "CURL_HOME": str(workdir)}


def run_tour(clone: Path, banner: str, env: dict, workdir: Path,
             timeout: float = BLOCK_TIMEOUT) -> list[Result]:
    """Paste the banner's exports, then run the README's blocks in order until one fails.
    The last Result is the failed one, if any."""
    blocks = [banner_exports(banner), *blocks_to_run((clone / "README.md").read_text())]
    workdir.mkdir(parents=True, exist_ok=True)
    session = Session(clone, tour_environment(clone, env, workdir), workdir)
    results: list[Result] = []
    try:
        for block in blocks:
            results.append(session.run(block, timeout))
            if not results[-1].ok:
                break
        if session.proc.poll() is None:
            session._send("exit 0")
            session.proc.wait(timeout=30)
    finally:
        session.close()
    return results


def report(results: list[Result]) -> str:
    """The failed block (heading, text, the end of its output), after what ran before it."""
    ran = "\n".join(f"  ok  {r.seconds:6.1f}s  {r.block.where()}" for r in results if r.ok)
    failed = [r for r in results if not r.ok]
    return f"README tour: ran\n{ran}\n" + (f"FAILED: {failed[0].report()}" if failed else "")
