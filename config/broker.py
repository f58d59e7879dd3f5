"""The embedded broker of `make run`: kombu's filesystem transport, with messages that appear whole.

Kombu's stock transport creates a message file in the queue folder and only then writes it, and
its reader takes no lock: a reader listing the folder in between takes an empty or half-written
file, fails with JSONDecodeError, and Celery calls that unrecoverable (kombu issue #1551). Here a
message is written under a name no reader matches (a dot-file ending in `.tmp`, in the queue
folder itself so the rename never crosses filesystems) and os.replace()d to its queue name once
whole: rename(2) is atomic, so a reader sees no file or the whole file. A reader claims a file by
renaming it within that folder (one consumer wins; the stock reader moves it to the system temp
dir, a copy and delete where that is another filesystem), and exchange tables are rewritten the
same way, under a lock file so two bindings at once keep both entries.

`config/settings/local.py` selects it with the URL scheme registered below.
"""

import contextlib
import fcntl
import logging
import os
import uuid
from collections.abc import Iterator
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem, virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

SCHEME = "filesystem-atomic"
TRANSPORT_ALIASES.setdefault(SCHEME, "config.broker:Transport")


def write_whole(path: str, data: bytes) -> None:
    """Write `data` to `path` so that no reader ever sees less than all of it."""
    folder, name = os.path.split(path)
    temp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "xb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class Channel(filesystem.Channel):
    """Kombu's filesystem channel with atomic publishing, claiming and exchange tables."""

    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        try:
            write_whole(os.path.join(self.data_folder_out, name), str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc

    def _get(self, queue):
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.startswith(".") or name.partition(".")[2] != wanted:
                continue  # another queue's, or not yet whole
            payload = self._claim(name)
            if payload is None:
                continue  # another consumer took it first
            try:
                return loads(bytes_to_str(payload))
            except ValueError:
                # Only a writer without this transport leaves such a file: a worker that
                # raised here would die for it (kombu #1551), so it is logged and skipped.
                logger.error("Skipped an unreadable broker message %s (%d bytes)", name,
                             len(payload))
        raise Empty()

    def _claim(self, name: str) -> bytes | None:
        """Take the message file `name`; None when another consumer renamed it first."""
        claimed = os.path.join(self.data_folder_in, f".{name}.{uuid.uuid4().hex}.claimed")
        try:
            os.rename(os.path.join(self.data_folder_in, name), claimed)
        except FileNotFoundError:
            return None
        try:
            with open(claimed, "rb") as handle:
                payload = handle.read()
            if self.store_processed:
                os.replace(claimed, os.path.join(self.processed_folder, name))
            else:
                os.remove(claimed)
        except OSError as exc:
            raise ChannelError(f"Cannot read file {name!r} from queue.") from exc
        return payload

    @contextlib.contextmanager
    def _table_locked(self, exchange) -> Iterator[None]:
        # Writers of one exchange table take turns (a read-modify-write); readers need no lock,
        # as the table file is only ever replaced whole.
        self.control_folder.mkdir(parents=True, exist_ok=True)
        with open(self.control_folder / f".{exchange}.exchange.lock", "ab") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def get_table(self, exchange):
        file = self._exchange_file(exchange)
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        return [filesystem.exchange_queue_t(*entry) for entry in loads(bytes_to_str(data))]

    def _table_change(self, exchange, entry, add: bool) -> None:
        file = self._exchange_file(exchange)
        try:
            with self._table_locked(exchange):
                table = self.get_table(exchange)
                if (entry in table) == add:
                    return
                if add:
                    table.insert(0, entry)
                else:
                    table.remove(entry)
                write_whole(str(file), str_to_bytes(dumps(table)))
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._table_change(exchange, entry, add=True)

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        # The virtual channel's part only: the stock one rewrites the table in place.
        virtual.Channel._delete(self, queue, exchange, routing_key, pattern, *args, **kwargs)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._table_change(exchange, entry, add=False)


class Transport(filesystem.Transport):
    """The filesystem transport with `Channel` above."""

    Channel = Channel
    global_state = virtual.BrokerState()
