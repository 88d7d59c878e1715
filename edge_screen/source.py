"""Read an input (path, bytes or binary file object) into memory, within a byte limit."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import BinaryIO

from .errors import MediaIOError, MediaTooLarge

MediaInput = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


@dataclass(frozen=True)
class Source:
    """The bytes of one input, where they came from, and their sha256 for the report."""

    name: str
    data: bytes
    sha256: str


def describe(media: MediaInput) -> str:
    """A name for reports: the path as given, or ``<bytes>`` / ``<stream>``."""
    if isinstance(media, str | os.PathLike):
        return os.fspath(media)
    if isinstance(media, bytes | bytearray | memoryview):
        return "<bytes>"
    return str(getattr(media, "name", "<stream>"))


def read_source(media: MediaInput, max_bytes: int) -> Source:
    """Read all of ``media``; raise ``MediaTooLarge`` past ``max_bytes`` without reading it all."""
    name = describe(media)
    if isinstance(media, bytes | bytearray | memoryview):
        data = bytes(media)
    elif isinstance(media, str | os.PathLike):
        try:
            with open(media, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > max_bytes:
                    raise MediaTooLarge(f"{size} bytes, over the limit of {max_bytes}")
                data = fh.read(max_bytes + 1)
        except MediaTooLarge:
            raise
        except OSError as exc:
            raise MediaIOError(f"cannot read {name}: {exc.strerror or exc}") from exc
    elif hasattr(media, "read"):
        try:
            data = media.read(max_bytes + 1)
        except OSError as exc:
            raise MediaIOError(f"cannot read {name}: {exc}") from exc
        if not isinstance(data, bytes):
            raise TypeError("file objects must be opened in binary mode")
    else:
        raise TypeError(f"cannot screen a {type(media).__name__}: pass a path, bytes or a file")
    if len(data) > max_bytes:
        raise MediaTooLarge(f"more than {max_bytes} bytes, the configured limit")
    return Source(name, data, hashlib.sha256(data).hexdigest())
