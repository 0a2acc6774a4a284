"""Where the service keeps files (road photos and overlays): a local directory by default
(<state>/files, next to the store's SQLite file), or S3-compatible object storage when
KYODO_FILE_ROOT=s3://bucket/prefix, the same pattern as MLflow's KYODO_ARTIFACT_ROOT.

The endpoint of an S3-compatible server (MinIO, moto, a cloud's S3 API) comes from
KYODO_S3_ENDPOINT_URL, else MLFLOW_S3_ENDPOINT_URL (one server for both is the common case), else
boto3's own settings (AWS_ENDPOINT_URL); keys and region from the usual AWS_* variables. boto3
is imported only when an s3:// root is configured (the `serve` extra installs it).

The database holds each file's metadata (key, size, sha256, content type); the bytes live here.
Keys are relative POSIX paths of letters, digits and `._-/` made by the store, never by a client.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

FILE_ROOT = "KYODO_FILE_ROOT"
S3_ENDPOINTS = ("KYODO_S3_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL")
_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")


class FileStoreError(RuntimeError):
    """The file store cannot be read or written (disk full, permissions, S3 unreachable or
    refusing): an outage the service answers with 503, not a bug."""


@contextmanager
def _outage(location: str, action: str, kinds: tuple[type[BaseException], ...]) -> Iterator[None]:
    try:
        yield
    except kinds as exc:
        raise FileStoreError(f"file store {location}: cannot {action}: {exc}") from exc


@dataclass(frozen=True)
class StoredFile:
    """What the database keeps about one file: key, size (bytes), sha256 (hex), content type."""

    key: str
    size: int
    sha256: str
    content_type: str


def describe(key: str, data: bytes, content_type: str) -> StoredFile:
    """The metadata of `data` stored under `key`."""
    return StoredFile(key, len(data), hashlib.sha256(data).hexdigest(), content_type)


def check_key(key: str) -> str:
    """The key itself; ValueError for one that could leave the store's root (`..`, absolute)."""
    if not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"file key {key!r}: expected a relative path of [A-Za-z0-9._-] parts")
    return key


class FileStore(Protocol):
    """A flat key -> bytes store; `location` says where (for messages)."""

    location: str

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, keys: list[str]) -> int: ...

    def delete_prefix(self, prefix: str) -> int: ...


class LocalFiles:
    """Files under one directory; each write is a temporary file renamed into place, so a reader
    sees the whole file or none, and a crash leaves no half-written file under its key."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.location = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        with _outage(self.location, f"write {key}", (OSError,)):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        with _outage(self.location, f"read {key}", (OSError,)):
            try:
                return path.read_bytes()
            except FileNotFoundError:
                return None

    def delete(self, keys: list[str]) -> int:
        """Remove these files (missing ones are skipped); returns how many were there."""
        gone = 0
        for key in keys:
            try:
                self._path(key).unlink()
                gone += 1
            except FileNotFoundError:
                pass
        return gone

    def delete_prefix(self, prefix: str) -> int:
        """Remove every file under the folder `prefix` (e.g. one tenant's); returns how many."""
        folder = self._path(prefix.rstrip("/"))
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
        return count


class S3Files:
    """Objects under s3://bucket/prefix on AWS S3 or an S3-compatible server."""

    def __init__(self, url: str, client: Any = None):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not bucket:
            raise ValueError(f"{FILE_ROOT} must be s3://bucket[/prefix] or a directory, "
                             f"got {url!r}")
        self.bucket, self.prefix, self.location = bucket, prefix.strip("/"), url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # only when files live on S3: the serving image needs no boto3 otherwise

            endpoint = next((os.environ[v] for v in S3_ENDPOINTS if os.environ.get(v)), None)
            self._client = boto3.client("s3", endpoint_url=endpoint)
        return self._client

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, action: str, fn: Callable[[], Any]) -> Any:
        """fn() with botocore's errors (unreachable, refused, throttled) as FileStoreError."""
        from botocore.exceptions import BotoCoreError, ClientError

        with _outage(self.location, action, (BotoCoreError, ClientError, OSError)):
            return fn()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        name = self._key(key)
        self._call(f"write {key}", lambda: self.client.put_object(
            Bucket=self.bucket, Key=name, Body=data, ContentType=content_type))

    def get(self, key: str) -> bytes | None:
        name = self._key(key)

        def read() -> bytes | None:
            try:
                return self.client.get_object(Bucket=self.bucket, Key=name)["Body"].read()
            except self.client.exceptions.NoSuchKey:
                return None

        return self._call(f"read {key}", read)

    def delete(self, keys: list[str]) -> int:
        """Remove these objects (S3 does not say which existed: returns how many were asked)."""
        names = [self._key(k) for k in keys]
        self._call("delete", lambda: self._delete(names))
        return len(names)

    def _delete(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):  # DeleteObjects takes at most 1,000 keys
            self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": n} for n in names[start:start + 1000]], "Quiet": True})

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix/`; returns how many."""
        folder = self._key(prefix.rstrip("/")) + "/"

        def listing() -> list[str]:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder)
            return [o["Key"] for page in pages for o in page.get("Contents", [])]

        names = self._call(f"list {prefix}", listing)
        self._call(f"delete {prefix}", lambda: self._delete(names))
        return len(names)


def file_root() -> str | None:
    """$KYODO_FILE_ROOT: an s3:// URL or a directory; None for the default."""
    return os.environ.get(FILE_ROOT) or None


def open_files(default: str | Path, root: str | None = None) -> FileStore:
    """S3 when root (default $KYODO_FILE_ROOT) is s3://..., a directory when it is a path, else
    the directory `default`."""
    root = root if root is not None else file_root()
    if root and root.startswith("s3://"):
        return S3Files(root)
    return LocalFiles(root or default)
