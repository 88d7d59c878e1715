"""What ``screen()`` takes, and reading it: a path, bytes, a binary file object, or pixels.

Encoded media (a path, bytes-like, a binary file) is read into memory within a byte limit, or,
for a video, peeked at and hashed in chunks so it can be streamed. Pixels (a numpy array, a
``PIL.Image.Image``) are screened as they are. Anything else is a ``NotMedia`` (a ``TypeError``):
a mistake in the call, raised to the caller, never a report.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .errors import MediaError, MediaIOError, MediaTooLarge, NotMedia
from .frames import check_deadline

MediaInput = (
    str
    | os.PathLike[str]
    | bytes
    | bytearray
    | memoryview
    | BinaryIO
    | NDArray[np.uint8]  # HxWx3 RGB, HxW or HxWx1 grey, HxWx4 RGBA (alpha dropped)
    | Image.Image  # every frame or page of a multi-frame image
)
BytesLike = bytes | bytearray | memoryview
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """The bytes of one input, where they came from, and their sha256 for the report."""

    name: str
    data: bytes
    sha256: str


def check_input(media: object) -> None:
    """Raise ``NotMedia`` unless ``media`` is one of the ``MediaInput`` kinds (what the media
    holds is checked later, and a bad one gets a report, not an exception)."""
    if isinstance(media, str | os.PathLike | bytes | bytearray | memoryview | Image.Image):
        return
    if isinstance(media, np.ndarray):
        return  # its shape and dtype are checked where it is converted (``prepare``)
    if isinstance(media, io.TextIOBase):
        raise NotMedia("cannot screen a file opened in text mode: open it with 'rb'")
    if callable(getattr(media, "read", None)):
        return
    raise NotMedia(
        f"cannot screen a {type(media).__name__}: pass a path, bytes, a binary file, "
        "a numpy RGB array or a PIL image"
    )


def describe(media: object) -> str:
    """A name for reports: the path as given, or ``<bytes>`` / ``<stream>`` / ``<pixels>``."""
    if isinstance(media, str | os.PathLike):
        return os.fsdecode(media)
    if isinstance(media, BytesLike):
        return "<bytes>"
    if isinstance(media, np.ndarray | Image.Image):
        return "<pixels>"
    return str(getattr(media, "name", "<stream>"))


def _binary(data: object, name: str) -> bytes:
    """What a file object's ``read`` gave, as bytes; a text stream is the caller's mistake."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise NotMedia(f"{name} gave {type(data).__name__}, not bytes: open it in binary mode")


def _seekable(media: object) -> bool:
    try:
        return bool(getattr(media, "seekable", lambda: False)())
    except (OSError, ValueError):
        return False


def peek(media: object, size: int = 64) -> bytes | None:
    """The first ``size`` bytes of a path, bytes or seekable file, without consuming them;
    None for a stream that cannot be rewound (it is read into memory instead)."""
    if isinstance(media, BytesLike):
        return bytes(media[:size])
    try:
        if isinstance(media, str | os.PathLike):
            with open(media, "rb") as fh:
                return fh.read(size)
        if _seekable(media):
            stream: Any = media
            pos = stream.tell()
            head = _binary(stream.read(size), describe(media))
            stream.seek(pos)
            return head
    except OSError as exc:
        raise MediaIOError(f"cannot read {media!s}: {exc.strerror or exc}") from exc
    return None


def hash_input(
    media: str | os.PathLike[str] | bytes | BinaryIO, max_bytes: int, deadline: float
) -> str:
    """sha256 of the whole input, read in chunks; ``MediaTooLarge`` past ``max_bytes``,
    ``ScreeningTimeout`` once ``deadline`` (``time.perf_counter``) passes between chunks."""
    digest = hashlib.sha256()
    if isinstance(media, bytes):
        if len(media) > max_bytes:
            raise MediaTooLarge(f"{len(media)} bytes, over the video limit of {max_bytes}")
        _hash_bytes(media, digest, deadline)
        return digest.hexdigest()
    try:
        if isinstance(media, str | os.PathLike):
            with open(media, "rb") as fh:
                _hash_file(fh, digest, max_bytes, deadline)
        else:
            pos = media.tell()
            _hash_file(media, digest, max_bytes, deadline)
            media.seek(pos)
    except MediaError:  # a timeout is an OSError too
        raise
    except OSError as exc:
        raise MediaIOError(f"cannot read {media!s}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _hash_bytes(data: bytes, digest: Any, deadline: float) -> None:
    view = memoryview(data)
    for at in range(0, len(view), _CHUNK):
        check_deadline(deadline)
        digest.update(view[at : at + _CHUNK])


def _hash_file(fh: BinaryIO, digest: Any, max_bytes: int, deadline: float) -> None:
    total = 0
    while True:
        check_deadline(deadline)
        chunk = _binary(fh.read(_CHUNK), describe(fh))
        if not chunk:
            return
        total += len(chunk)
        if total > max_bytes:
            raise MediaTooLarge(f"more than {max_bytes} bytes, over the video limit")
        digest.update(chunk)


def read_source(media: MediaInput, max_bytes: int, deadline: float) -> Source:
    """Read all of ``media``; raise ``MediaTooLarge`` past ``max_bytes`` without reading it all,
    ``ScreeningTimeout`` once ``deadline`` passes while it is hashed."""
    name = describe(media)
    if isinstance(media, BytesLike):
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
    elif callable(getattr(media, "read", None)):
        try:
            data = _binary(media.read(max_bytes + 1), name)  # type: ignore[union-attr]
        except OSError as exc:
            raise MediaIOError(f"cannot read {name}: {exc}") from exc
    else:
        raise NotMedia(f"cannot read a {type(media).__name__} as a file")
    if len(data) > max_bytes:
        raise MediaTooLarge(f"more than {max_bytes} bytes, the configured limit")
    digest = hashlib.sha256()
    _hash_bytes(data, digest, deadline)
    return Source(name, data, digest.hexdigest())
