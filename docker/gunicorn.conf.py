"""gunicorn settings for `docker/entrypoint.sh web`, all from the environment.

SIGTERM: gunicorn stops accepting, lets running requests finish for up to graceful_timeout
seconds, then exits. The app writes its own JSON access log (config/logging.py), so gunicorn's
is off unless WEB_ACCESS_LOG names a file ("-" for stdout).
"""

import glob
import os

bind = [os.environ.get("LEDGERFLOW_BIND", "0.0.0.0:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 120
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "30"))
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
errorlog = "-"
loglevel = "info"
# Proxies whose X-Forwarded-* headers gunicorn trusts (comma-separated IPs, or "*").
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# No gunicornc control socket: one shared path in $HOME would be contended by every gunicorn.
control_socket_disable = True
# The workers' heartbeat files on tmpfs: a container's overlay filesystem can stall them.
if os.path.isdir("/dev/shm"):  # noqa: S108  (gunicorn's advice for containers)
    worker_tmp_dir = "/dev/shm"  # noqa: S108

_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir:
    os.makedirs(_metrics_dir, exist_ok=True)

    def on_starting(server):
        # Samples of an earlier run would be added to this one's.
        for path in glob.glob(os.path.join(_metrics_dir, "*.db")):
            os.remove(path)

    def child_exit(server, worker):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
