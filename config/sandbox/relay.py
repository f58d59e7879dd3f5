"""The worker's end of a job's network: unix sockets that the launcher inside the sandbox
forwards a loopback port to.

- The tracking relay takes HTTP requests for MLflow's tracking and artifact routes only and
  sends them on to the tracking server with the run's token as their credential (whatever
  credential the job sent is dropped): the token never enters the sandbox, and a job reaches
  nothing of the server but what the token's allow-list lets it do there.
- The egress proxy answers HTTP CONNECT to allow-listed hosts and ports, connecting to an
  address it resolved and checked itself (netpolicy), never to loopback, private or
  link-local addresses unless the operator allows them: how environment builds reach the
  package index and Git fetches their remote, with nothing else of the network.
"""

import contextlib
import http.client
import json
import logging
import os
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

from config.sandbox.common import EGRESS_SOCKET, TRACKING_SOCKET
from config.sandbox.spec import Egress, Relay

logger = logging.getLogger(__name__)

TRACKING_ROUTES = ("/api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow/",
                   "/api/3.0/mlflow/", "/ajax-api/3.0/mlflow/", "/get-artifact",
                   "/model-versions/get-artifact")
TRACKING_EXACT = ("/version", "/health")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "host", "authorization",
              "cookie", "content-length", "forwarded", "x-forwarded-for"}
CHUNK = 1 << 20
UPSTREAM_TIMEOUT = 600


def route_allowed(target: str) -> bool:
    """Origin-form paths of MLflow's tracking and artifact routes, nothing that climbs out of
    them (`..` segments, encoded dots, slashes or backslashes)."""
    if not target.startswith("/"):
        return False
    path = urlsplit(target).path
    lowered = path.lower()
    if any(bad in lowered for bad in ("%2e", "%2f", "%5c", "\\", "//")) or ".." in path.split("/"):
        return False
    return path in TRACKING_EXACT or path.startswith(TRACKING_ROUTES)


class _Body:
    """A request body read from the job, `length` bytes (or de-chunked), as a file object."""

    def __init__(self, rfile, length: int | None):
        self.rfile, self.left, self.chunked = rfile, length, length is None

    def read(self, size: int = CHUNK) -> bytes:
        if self.chunked:
            return self._chunk()
        if not self.left:
            return b""
        data = self.rfile.read(min(size, self.left))
        self.left -= len(data)
        if not data:
            self.left = 0
        return data

    def _chunk(self) -> bytes:
        line = self.rfile.readline(1024)
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b""
        data = self.rfile.read(size)
        self.rfile.readline(8)
        return data

    def __iter__(self):
        while data := self.read():
            yield data


class _TrackingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ledgerflow-relay"

    def log_message(self, format, *args):  # the job's requests are the server's to log
        pass

    def _refuse(self, status: int, message: str) -> None:
        body = json.dumps({"error_code": "PERMISSION_DENIED", "message": message}).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _forward(self) -> None:
        relay: Relay = self.server.relay
        self.close_connection = True
        if not route_allowed(self.path):
            self._refuse(403, "A project run reaches only MLflow's tracking routes.")
            return
        upstream = urlsplit(relay.upstream)
        connection_class = http.client.HTTPSConnection if upstream.scheme == "https" \
            else http.client.HTTPConnection
        conn = connection_class(upstream.hostname, upstream.port, timeout=UPSTREAM_TIMEOUT,
                                blocksize=CHUNK)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Authorization"] = f"Bearer {relay.token}"
        length = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        body = None
        if length is not None and length.isdigit():
            headers["Content-Length"] = length
            body = _Body(self.rfile, int(length)) if int(length) else None
        elif chunked:
            body = iter(_Body(self.rfile, None))
        try:
            base = upstream.path.rstrip("/")
            conn.request(self.command, base + self.path, body=body, headers=headers,
                         encode_chunked=chunked and length is None)
            response = conn.getresponse()
            self._answer(response)
        except (OSError, http.client.HTTPException) as exc:
            logger.warning("tracking relay: %s %s failed: %s", self.command, self.path, exc)
            with contextlib.suppress(OSError):
                self._refuse(502, "The tracking server could not be reached.")
        finally:
            conn.close()

    def _answer(self, response) -> None:
        self.send_response_only(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP or key.lower() == "content-length":
                self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            while data := response.read(CHUNK):
                self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward


class _EgressHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def _deny(self, status: int, message: str) -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(message.encode())))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(message.encode())
        self.close_connection = True

    def do_CONNECT(self):
        from config.sandbox.netpolicy import EgressRefused, resolve_destination

        self.close_connection = True
        host, _, port = self.path.rpartition(":")
        host = host.strip("[]")
        if not port.isdigit():
            self._deny(400, "CONNECT host:port")
            return
        try:
            addresses = resolve_destination(host, int(port), self.server.egress)
        except EgressRefused as exc:
            logger.info("egress refused: %s", exc)
            self._deny(403, str(exc))
            return
        upstream = None
        for address in addresses:
            with contextlib.suppress(OSError):
                upstream = socket.create_connection((address, int(port)), timeout=30)
                break
        if upstream is None:
            self._deny(502, f"Could not connect to {host}:{port}.")
            return
        self.send_response_only(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        upstream.settimeout(None)
        _splice(self.connection, upstream)

    def _plain(self):
        self._deny(403, "Only HTTPS (CONNECT) to allow-listed hosts leaves a sandbox.")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _plain


def _splice(a: socket.socket, b: socket.socket) -> None:
    def pump(source, sink):
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=pump, args=(b, a), daemon=True)
    other.start()
    pump(a, b)
    other.join()
    b.close()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _serve(path: Path, handler, **attributes) -> _Server:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = _Server(str(path), handler)
    for key, value in attributes.items():
        setattr(server, key, value)
    # the job's uid connects (the directory is bound read-only, and only into its sandbox)
    os.chmod(path, 0o666)  # noqa: S103
    # shutdown() waits for the loop to look again: a short interval, or every job would last
    # at least that long (bench/RESULTS.md)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                     name=f"relay-{path.name}", daemon=True).start()
    return server


@contextlib.contextmanager
def serving(directory: Path, *, relay: Relay | None = None, egress: Egress | None = None):
    """Serve the job's sockets in `directory` while the block runs."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    servers = []
    try:
        if relay is not None:
            servers.append(_serve(directory / TRACKING_SOCKET, _TrackingHandler, relay=relay))
        if egress is not None:
            servers.append(_serve(directory / EGRESS_SOCKET, _EgressHandler, egress=egress))
        yield directory
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
