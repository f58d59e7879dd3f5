#!/usr/bin/env python3
"""Run a command beside a throwaway PostgreSQL and Redis on free loopback ports.

    python scripts/with_services.py -- pytest -q

Exports DATABASE_URL (the service's role), DATABASE_OWNER_URL (the tables' owner), REDIS_URL,
CELERY_BROKER_URL and CELERY_RESULT_BACKEND to the command, and always stops both servers and
removes their data afterwards. initdb refuses to run as root, so as root the PostgreSQL
processes run as the unprivileged user `nobody`.
"""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_bindir() -> Path:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if candidates:
        return Path(candidates[-1])
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    sys.exit("PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN).")


def as_postgres_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", *cmd]


def wait_for_port(port: int, proc: subprocess.Popen, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited early with code {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"{name} did not listen on port {port} within {timeout}s")


APP_ROLE = "ledgerflow"  # the service: reads and writes rows
OWNER_ROLE = "ledgerflow_owner"  # the tables' owner: migrate, and the tests' databases


def start_postgres(workdir: Path) -> tuple[subprocess.Popen, int]:
    bindir, data = pg_bindir(), workdir / "pgdata"
    if os.geteuid() == 0:
        shutil.chown(workdir, user="nobody", group="nogroup")
    subprocess.run(
        as_postgres_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"]),
        check=True, stdout=subprocess.DEVNULL,
    )
    port = free_port()
    proc = subprocess.Popen(
        as_postgres_user([str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                          "-k", str(workdir), "-c", "listen_addresses=127.0.0.1",
                          "-c", "fsync=off", "-c", "synchronous_commit=off",
                          "-c", "full_page_writes=off", "-c", "max_connections=200"]),
        stdout=subprocess.DEVNULL, stderr=open(workdir / "postgres.log", "w"),  # noqa: SIM115
    )
    wait_for_port(port, proc, "postgres")
    # The two roles of production (docs/deploy.md, tenancy/dbroles.py), neither a superuser
    # (one would pass through row-level security): the owner migrates and, here, creates the
    # tests' databases; the service reads and writes rows. For the tests alone, the service
    # may switch the audit triggers off and become the owner (NOINHERIT: only by SET ROLE), as
    # the tamper drills' "database administrator" does.
    subprocess.run(
        as_postgres_user([str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port),
                          "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q",
                          "-c", f"CREATE ROLE {OWNER_ROLE} LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS",
                          "-c", f"CREATE ROLE {APP_ROLE} LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS",
                          "-c", f"GRANT {OWNER_ROLE} TO {APP_ROLE}",
                          "-c", "GRANT SET ON PARAMETER session_replication_role "
                          f"TO {APP_ROLE}, {OWNER_ROLE}",
                          "-c", f"CREATE DATABASE ledgerflow OWNER {OWNER_ROLE}"]),
        check=True, stdout=subprocess.DEVNULL,
    )
    return proc, port


def start_redis(workdir: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server not found (apt-get install redis-server).")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port, proc, "redis-server")
    return proc, port


def stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.exit(__doc__)
    workdir = Path(tempfile.mkdtemp(prefix="ledgerflow-services-"))
    workdir.chmod(0o755)
    procs: list[tuple[subprocess.Popen, int]] = []
    try:
        pg, pg_port = start_postgres(workdir)
        procs.append((pg, signal.SIGINT))  # SIGINT: PostgreSQL's fast shutdown
        redis, redis_port = start_redis(workdir)
        procs.append((redis, signal.SIGTERM))
        redis_url = f"redis://127.0.0.1:{redis_port}"
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{APP_ROLE}@127.0.0.1:{pg_port}/ledgerflow",
            "DATABASE_OWNER_URL": f"postgres://{OWNER_ROLE}@127.0.0.1:{pg_port}/ledgerflow",
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": f"{redis_url}/0",
            "CELERY_RESULT_BACKEND": f"{redis_url}/1",
        }
        print(f"with_services: PostgreSQL on {pg_port}, Redis on {redis_port}", flush=True)
        return subprocess.call(argv, env=env)
    finally:
        for proc, sig in reversed(procs):
            stop(proc, sig)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
