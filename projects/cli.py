"""`ledgerflow run`: run an MLproject on the server's workers, as `mlflow run` runs one locally.

    ledgerflow run URI [-e ENTRY] [-P key=value ...] [--version REF] [--experiment-name NAME]
                   [--env-manager local|virtualenv|conda] [--timeout SECONDS] [--wait]
    ledgerflow status RUN_ID [--wait]

URI is a Git URL (https://, ssh://), a local project directory (uploaded as an archive) or a
.tar.gz/.zip archive. The server and credentials come from MLFLOW_TRACKING_URI and
MLFLOW_TRACKING_TOKEN (or MLFLOW_TRACKING_USERNAME/PASSWORD), as the mlflow CLI reads them.
`run` prints the run's web page and, without --wait, the run's id on stdout and the command
that follows it. `status` shows a submitted run; with --wait (as `run --wait`) its output is
followed from the start until the run ends, and the exit status is 0 only for FINISHED.
Without --wait, `status` exits 1 for a run that FAILED or was KILLED, 0 otherwise.
No Django here: this runs on a data scientist's machine.
"""

import argparse
import io
import json
import os
import sys
import tarfile
import time
import uuid
from pathlib import Path

import requests

DONE = ("FINISHED", "FAILED", "KILLED")


def _session() -> tuple[requests.Session, str]:
    base = os.environ.get("MLFLOW_TRACKING_URI", "").rstrip("/")
    if not base.startswith(("http://", "https://")):
        sys.exit("Set MLFLOW_TRACKING_URI to the Ledgerflow server (http://… or https://…).")
    session = requests.Session()
    if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        session.headers["Authorization"] = f"Bearer {token}"
    elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
        session.auth = (os.environ["MLFLOW_TRACKING_USERNAME"],
                        os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
    else:
        sys.exit("Set MLFLOW_TRACKING_TOKEN (or MLFLOW_TRACKING_USERNAME and _PASSWORD).")
    return session, base


def _parameters(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            sys.exit(f"-P expects key=value, got {pair!r}.")
        params[key] = value
    return params


def _archive_of(directory: Path) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if ".git" in relative.parts or "__pycache__" in relative.parts or path.is_symlink():
                continue
            tar.add(path, arcname=str(relative), recursive=False)
    data.seek(0)
    return data


def experiment_id_of(session, base: str, name: str) -> str:
    """The experiment's id; created when there is none of that name, as `mlflow run` does."""
    api = f"{base}/api/2.0/mlflow/experiments"
    found = session.get(f"{api}/get-by-name", params={"experiment_name": name}, timeout=60)
    if found.status_code == 200:
        return found.json()["experiment"]["experiment_id"]
    if found.status_code != 404:
        sys.exit(f"Could not look up experiment {name!r} ({found.status_code}): {found.text}")
    print(f"INFO: '{name}' does not exist. Creating a new experiment", file=sys.stderr)
    created = session.post(f"{api}/create", json={"name": name}, timeout=60)
    if created.status_code != 200:
        sys.exit(f"Could not create experiment {name!r} ({created.status_code}): "
                 f"{created.text}")
    return created.json()["experiment_id"]


def submit(session, base: str, args) -> dict:
    fields = {"entry_point": args.entry_point, "parameters": json.dumps(_parameters(args.param)),
              "env_manager": args.env_manager}
    if args.experiment_name and not args.experiment_id:
        fields["experiment_id"] = experiment_id_of(session, base, args.experiment_name)
    if args.experiment_id:
        fields["experiment_id"] = args.experiment_id
    if args.timeout:
        fields["timeout_seconds"] = str(args.timeout)
    local = Path(args.uri)
    files = None
    if local.is_dir():
        files = {"archive": (f"{local.resolve().name}.tar.gz", _archive_of(local))}
    elif local.is_file():
        files = {"archive": (local.name, local.open("rb"))}
    else:
        fields["uri"], fields["version"] = args.uri, args.version or ""
    response = session.post(f"{base}/api/v1/projects/runs/", data=fields, files=files,
                            timeout=300)
    if response.status_code != 201:
        sys.exit(f"Submission refused ({response.status_code}): {response.text}")
    return response.json()


def _get(session, url: str, **params) -> dict:
    response = session.get(url, params=params or None, timeout=60)
    if response.status_code == 404:
        sys.exit(f"Not found: {url} (no such project run in your organization).")
    if response.status_code != 200:
        sys.exit(f"The server answered {response.status_code} for {url}: {response.text}")
    return response.json()


def follow(session, base: str, run_id: str, out=None, err=None) -> dict:
    """Copy the run's output from the start until it ends; returns the run as it ended."""
    out, err = out or sys.stdout, err or sys.stderr  # looked up now: callers may swap them
    offsets = {"stdout": 0, "stderr": 0}
    run_api = f"{base}/api/v1/projects/runs/{run_id}/"
    while True:
        status = _get(session, run_api)
        for stream, sink in (("stdout", out), ("stderr", err)):
            while True:
                chunk = _get(session, f"{run_api}logs", stream=stream, offset=offsets[stream])
                if chunk["text"]:
                    sink.write(chunk["text"])
                    sink.flush()
                offsets[stream] = chunk["offset"]
                if not chunk["text"] or chunk["done"]:
                    break
        if status["status"] in DONE:
            return status
        time.sleep(1)


def run_page(base: str, run_id: str) -> str:
    """The run's page in the web UI (the tracking run is linked from there)."""
    return f"{base}/projects/runs/{run_id}/"


def _program() -> str:
    """How this CLI was started, so the printed command works when pasted back."""
    started = sys.argv[0] if sys.argv else ""
    return started if Path(started).name == "ledgerflow" else "ledgerflow"


def _follow_hint(run_id: str) -> str:
    return f"{_program()} status {run_id} --wait"


def _wait(session, base: str, run_id: str) -> int:
    try:
        final = follow(session, base, run_id)
    except KeyboardInterrupt:
        # Stopping the CLI stops following, not the run: it goes on on the server.
        print(f"\n=== Stopped following; the run goes on. Follow it again with: "
              f"{_follow_hint(run_id)} ===", file=sys.stderr)
        return 130
    message = f": {final['status_message']}" if final["status_message"] else ""
    print(f"=== Run {run_id} {final['status']}{message} ===", file=sys.stderr)
    return 0 if final["status"] == "FINISHED" else 1


def run_command(session, base: str, args) -> int:
    submitted = submit(session, base, args)
    run_id = submitted["id"]
    print(f"=== Submitted project run {run_id} (tracking run {submitted['run_id']}) ===\n"
          f"=== View it at {run_page(base, run_id)} ===", file=sys.stderr)
    if args.wait:
        return _wait(session, base, run_id)
    print(f"=== Follow it with: {_follow_hint(run_id)} ===", file=sys.stderr)
    print(run_id)  # stdout: the id, for scripts (RUN=$(ledgerflow run ...))
    return 0


def status_command(session, base: str, args) -> int:
    run_id = str(args.run_id)
    if args.wait:
        print(f"=== View it at {run_page(base, run_id)} ===", file=sys.stderr)
        return _wait(session, base, run_id)
    status = _get(session, f"{base}/api/v1/projects/runs/{run_id}/")
    message = f": {status['status_message']}" if status["status_message"] else ""
    print(f"Project run {run_id}: {status['status']}{message}\n"
          f"Tracking run: {status['run_id']} (experiment {status['experiment_id']})\n"
          f"Web page: {run_page(base, run_id)}")
    if status["status"] not in DONE:
        print(f"Follow it with: {_follow_hint(run_id)}")
    return 1 if status["status"] in ("FAILED", "KILLED") else 0


def _run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a project run id (the UUID `ledgerflow run` printed)") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledgerflow")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an MLproject on the server's workers")
    run.add_argument("uri", help="Git URL, project directory or .tar.gz/.zip archive")
    run.add_argument("-e", "--entry-point", default="main")
    run.add_argument("-P", "--param", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("-v", "--version", help="Git branch, tag or commit")
    run.add_argument("--experiment-name")
    run.add_argument("--experiment-id")
    run.add_argument("--env-manager", choices=["local", "virtualenv", "conda"], default="local")
    run.add_argument("--timeout", type=int, help="seconds")
    run.add_argument("--wait", action="store_true", help="follow the output until it ends")
    status = commands.add_parser("status", help="show a project run; --wait follows it")
    status.add_argument("run_id", type=_run_id, help="the project run's id")
    status.add_argument("--wait", action="store_true",
                        help="print its output from the start and follow it until it ends")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    session, base = _session()
    command = run_command if args.command == "run" else status_command
    try:
        return command(session, base, args)
    except requests.ConnectionError as exc:
        sys.exit(f"Cannot reach the Ledgerflow server at {base} (MLFLOW_TRACKING_URI): {exc}")


if __name__ == "__main__":
    sys.exit(main())
