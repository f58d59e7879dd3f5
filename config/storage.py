"""Object storage: django-storages' S3 backend, reading by streaming.

`S3Storage.open()` first downloads the whole object into a temporary file; a 5 GB artifact
would sit on the web process's disk (or, with the default memory size, in its memory) before
the first byte goes out. Reads here stream the object's body from S3 chunk by chunk instead.
Writes are django-storages' own (`upload_fileobj`: multipart, streaming), fed full reads:
s3transfer takes a short read for the end of the stream, and the request bodies given to the
storages (tracking.artifacts._Intake) hand out at most 1 MB a read.
"""

import io

from botocore.exceptions import ClientError
from django.core.files import File
from storages.backends.s3 import S3Storage
from storages.utils import clean_name


class StreamingS3Storage(S3Storage):
    def _open(self, name, mode="rb"):
        if "r" not in mode or "+" in mode or "w" in mode:
            return super()._open(name, mode)
        key = self._normalize_name(clean_name(name))
        try:
            response = self.connection.meta.client.get_object(Bucket=self.bucket_name, Key=key)
        except ClientError as err:
            if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(f"File does not exist: {name}") from None
            raise
        file = File(_Body(response["Body"]), name=name)
        file.size = response["ContentLength"]
        file.mode = mode
        return file


    def _save(self, name, content):
        return super()._save(name, File(_FullReads(content), name=getattr(content, "name", name)))


class _FullReads(io.RawIOBase):
    """`read(n)` returns n bytes unless the stream ends first."""

    def __init__(self, stream):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, size=-1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self._stream.read(1024 * 1024), b""))
        parts, missing = [], size
        while missing > 0:
            data = self._stream.read(missing)
            if not data:
                break
            parts.append(data)
            missing -= len(data)
        return b"".join(parts)


class _Body(io.RawIOBase):
    """botocore's StreamingBody as a readable, non-seekable file (FileResponse, copyfileobj
    and tarfile read it in chunks)."""

    def __init__(self, body):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def read(self, size=-1) -> bytes:
        return self._body.read(None if size is None or size < 0 else size)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
