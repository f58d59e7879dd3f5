"""The embedded broker of `make run` (config/broker.py): a message file appears whole or not at
all, so a worker never reads one half-written (kombu issue #1551), and concurrent senders lose
nothing and kill no worker.

The probe holds a writer in the middle of writing a message and lets a reader take its turn.
Against kombu's stock filesystem transport the reader takes the half-written file and fails
with the JSONDecodeError that stopped `make run`; against ours it sees no message until the
writer is done, then the whole message."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty

from kombu import Connection
from kombu.transport import filesystem

from config import broker
from tests.models_registry.test_registry_client import _stop

ROOT = Path(__file__).resolve().parents[2]
SCRUBBED = ("DATABASE_URL", "DATABASE_OWNER_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL",
            "DJANGO_SETTINGS_MODULE", "LEDGERFLOW_DATA_DIR")


def _options(spool: Path) -> dict:
    for name in ("queue", "processed", "control"):
        (spool / name).mkdir(parents=True, exist_ok=True)
    return {"data_folder_in": str(spool / "queue"), "data_folder_out": str(spool / "queue"),
            "processed_folder": str(spool / "processed"),
            "control_folder": str(spool / "control"), "store_processed": False}


class _HalfWriter:
    """A file whose write() stops halfway until the reader has had its turn."""

    def __init__(self, handle, halfway: threading.Event, go_on: threading.Event):
        self._handle, self._halfway, self._go_on = handle, halfway, go_on

    def write(self, data):
        half = len(data) // 2
        self._handle.write(data[:half])
        self._handle.flush()
        self._halfway.set()
        assert self._go_on.wait(10), "the reader never took its turn"
        return half + self._handle.write(data[half:])

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


def _probe(monkeypatch, module, transport, spool: Path):
    """Publish one message through `transport` while a reader reads the queue halfway through
    the write; returns (what the reader got at that moment, what it got afterwards)."""
    halfway, go_on = threading.Event(), threading.Event()

    def half_writing_open(path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)  # noqa: SIM115  (closed by its user)
        return _HalfWriter(handle, halfway, go_on) if "w" in mode or "x" in mode else handle

    monkeypatch.setattr(module, "open", half_writing_open, raising=False)
    body = {"body": "x" * 2000, "headers": {"task": "jobs.sweep"}, "properties": {}}
    with Connection(transport=transport, transport_options=_options(spool)) as writer_conn, \
            Connection(transport=transport, transport_options=_options(spool)) as reader_conn:
        writer, reader = writer_conn.channel(), reader_conn.channel()
        sending = threading.Thread(target=writer._put, args=("default", body))
        sending.start()
        try:
            assert halfway.wait(10), "the writer never started writing"
            monkeypatch.undo()  # the reader reads as usual
            try:
                during = reader._get("default")
            except Empty:
                during = None
            except Exception as exc:
                during = exc
        finally:
            go_on.set()
            sending.join(10)
        try:
            after = reader._get("default")
        except Empty:
            after = None
    return during, after, body


def test_the_stock_transport_hands_a_reader_a_half_written_message(monkeypatch, tmp_path):
    during, after, _body = _probe(monkeypatch, filesystem, filesystem.Transport, tmp_path)
    assert isinstance(during, json.JSONDecodeError), during
    assert after is None  # and the message is gone with it


def test_our_transport_shows_a_message_only_once_it_is_whole(monkeypatch, tmp_path):
    during, after, body = _probe(monkeypatch, broker, broker.Transport, tmp_path)
    assert during is None
    assert after == body
    assert os.listdir(tmp_path / "queue") == []  # no temporary or claimed file left behind


def test_two_readers_never_take_the_same_message(tmp_path):
    options = _options(tmp_path)
    with Connection(transport=broker.Transport, transport_options=options) as conn:
        channel = conn.channel()
        for number in range(200):
            channel._put("default", {"n": number})
    taken, lock = [], threading.Lock()

    def read():
        with Connection(transport=broker.Transport, transport_options=options) as conn:
            channel = conn.channel()
            while True:
                try:
                    message = channel._get("default")
                except Empty:
                    return
                with lock:
                    taken.append(message["n"])

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join(20)
    assert sorted(taken) == list(range(200))


def test_concurrent_bindings_keep_every_entry_of_an_exchange_table(tmp_path):
    options = _options(tmp_path)

    def bind(number):
        with Connection(transport=broker.Transport, transport_options=options) as conn:
            conn.channel()._queue_bind("ledgerflow", f"key{number}", "", f"queue{number}")

    binders = [threading.Thread(target=bind, args=(n,)) for n in range(8)]
    for thread in binders:
        thread.start()
    for thread in binders:
        thread.join(10)
    with Connection(transport=broker.Transport, transport_options=options) as conn:
        table = conn.channel().get_table("ledgerflow")
    assert sorted(entry.queue for entry in table) == [f"queue{n}" for n in range(8)]


# A Celery app on the embedded broker alone, without Django (Celery's Django fixup would set it
# up, and a worker would take many seconds to start); beat publishes every 0.2 s as `make
# run`'s beat does every minute. The worker imports it from a file, the test runs it as is.
APP = """
import os

import config.broker
from celery import Celery

spool = os.environ["SPOOL"]
app = Celery("embedded", broker=f"{config.broker.SCHEME}://localhost/",
             backend=f"file://{spool}/results", fixups=[])
app.conf.update(
    broker_transport_options={
        "data_folder_in": f"{spool}/queue", "data_folder_out": f"{spool}/queue",
        "processed_folder": f"{spool}/processed", "control_folder": f"{spool}/control",
        "store_processed": False, "polling_interval": 0.1},
    task_default_queue="default", worker_prefetch_multiplier=1,
    beat_schedule={"tick": {"task": "ping", "schedule": 0.2, "args": ["beat"]}})


@app.task(name="ping")
def ping(payload):
    return f"pong:{payload}"
"""


def test_make_run_settings_put_the_worker_on_this_transport(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local",
               LEDGERFLOW_DATA_DIR=str(tmp_path / "data"))
    probe = ("from config.celery import app\n"
             "with app.connection_for_write() as conn:\n"
             "    print(type(conn.transport).__module__, conn.transport.polling_interval)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout.split()
    assert out == ["config.broker", "0.1"]


def _send(app, name: str, count: int, answers: dict) -> None:
    results = [app.send_task("ping", args=[f"{name}-{n}"]) for n in range(count)]
    answers[name] = [result.get(timeout=60, interval=0.05) for result in results]


def test_concurrent_senders_and_a_worker_lose_no_message_and_no_worker(monkeypatch, tmp_path):
    """A real Celery worker (prefork pool, embedded beat) and four senders with 50 tasks each
    at once: every answer arrives and the worker is still there."""
    (tmp_path / "embedded_app.py").write_text(APP)
    _options(tmp_path)
    (tmp_path / "results").mkdir()
    monkeypatch.setenv("SPOOL", str(tmp_path))
    for name in SCRUBBED:  # Celery prefers CELERY_BROKER_URL, if set, to the app's own
        monkeypatch.delenv(name, raising=False)
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{ROOT}"
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "embedded_app", "worker", "--loglevel",
             "INFO", "--concurrency", "2", "--queues", "default", "--hostname", "embedded@%h",
             "--beat", "--schedule", str(tmp_path / "beat-schedule")],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    from config.celery import app as ours

    try:
        namespace: dict = {}
        exec(APP, namespace)  # a Celery() becomes this process's current app: given back below
        answers: dict = {}
        senders = [threading.Thread(target=_send, args=(namespace["app"], f"s{n}", 50, answers))
                   for n in range(4)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(90)
        assert answers == {f"s{n}": [f"pong:s{n}-{i}" for i in range(50)] for n in range(4)}
        assert worker.poll() is None, log.read_text()[-3000:]
    finally:
        _stop(worker, signal.SIGTERM)
        # the service's app is the current one again: the job runner sends through
        # current_app, and later tests in this process must reach their own broker
        ours.set_current()
        ours.set_default()
    output = log.read_text()
    assert "filesystem-atomic://" in output  # it was our transport the worker consumed from
    assert "JSONDecodeError" not in output and "Unrecoverable" not in output, output[-3000:]
    assert output.count("Sending due task tick") >= 2  # beat published alongside the senders
