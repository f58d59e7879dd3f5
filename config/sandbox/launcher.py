"""The first process inside a sandbox (bwrap, docker): started as `python3 -I -S launcher.py
CONFIG` with the system's Python and nothing but the standard library.

It opens the loopback forwards (a TCP port of the sandbox's own network namespace to a unix
socket the worker listens on: the tracking relay, the egress proxy), then runs the job's
command in a child with the job's rlimits, and exits with the child's status (128 + the
signal when a signal ended it). Nothing here is trusted: the job may kill or replace this
process; all it would reach is the worker's end of the sockets, which checks everything.

CONFIG is JSON: {"argv": [...], "cwd": "/job", "rlimits": {"as": bytes, ...},
"forwards": [[port, "/run/ledgerflow/tracking.sock"], ...], "uid": n (root start only)}.
"""

import contextlib
import json
import os
import resource
import signal
import socket
import sys
import threading


def _pipe(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _serve(listener, path):
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(path)
        except OSError:
            client.close()
            upstream.close()
            continue
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()


def _forward(port, path):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    threading.Thread(target=_serve, args=(listener, path), daemon=True).start()


def _child(config):
    for name, value in config.get("rlimits", {}).items():
        limit = getattr(resource, "RLIMIT_" + name.upper())
        resource.setrlimit(limit, (value, value))
    os.chdir(config.get("cwd") or "/")
    argv = config["argv"]
    try:
        os.execvp(argv[0], argv)  # noqa: S606 (the job's own command, in the sandbox)
    except OSError as exc:
        sys.stderr.write(f"ledgerflow sandbox: cannot run {argv[0]!r}: {exc.strerror}\n")
        os._exit(127)


def _drop(config):
    """Started as root (a root worker's bwrap makes no user namespace): become the job's
    own uid before anything of the job runs; the kernel clears every capability with it."""
    uid = config.get("uid")
    if uid is None:
        return
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    for cap in range(64):  # empty the bounding set: nothing exec'd later can regain one
        prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; fails harmlessly past the last cap
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        sys.stderr.write("ledgerflow sandbox: could not drop privileges\n")
        os._exit(125)


def main():
    config = json.loads(sys.argv[1])
    for port, path in config.get("forwards", []):
        _forward(int(port), path)
    _drop(config)
    pid = os.fork()
    if pid == 0:
        _child(config)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: os.kill(pid, s))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    sys.stdout.flush()
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
