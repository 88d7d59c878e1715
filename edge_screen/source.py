"""What ``screen()`` takes, and reading it: a path, bytes, a binary file object, or pixels.

Encoded media (a path, bytes-like, a binary file) is opened once (``OpenedInput``): its first
bytes go to the probe, then it is read into memory within a byte limit, or, for a video, hashed
in chunks so it can be streamed. Pixels (a numpy array, a
``PIL.Image.Image``) are screened as they are. Anything else is a ``NotMedia`` (a ``TypeError``):
a mistake in the call, raised to the caller, never a report.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .errors import MediaError, MediaIOError, MediaTooLarge, NotMedia, UnsupportedMedia
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
VideoInput = str | os.PathLike[str] | bytes | BinaryIO  # what a video is streamed from
_CHUNK = 1 << 20
_HEAD = 64  # bytes the probe reads


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


def _hash_bytes(data: bytes, digest: Any, deadline: float) -> None:
    view = memoryview(data)
    for at in range(0, len(view), _CHUNK):
        check_deadline(deadline)
        digest.update(view[at : at + _CHUNK])


class OpenedInput:
    """One encoded input (a path, bytes, a binary file), opened once: its first bytes for the
    probe, then read whole (a still) or hashed in chunks and handed on to be streamed (a video).
    ``sha256`` is known once it is read or hashed. A stream that cannot be rewound is read whole
    when opened, within the byte limit of stills. Use it as a context manager (a path's file is
    closed on leaving)."""

    def __init__(self, media: str | os.PathLike[str] | BytesLike | BinaryIO, max_bytes: int):
        self.name = describe(media)
        self.sha256: str | None = None
        self._max_bytes = max_bytes
        self._file: BinaryIO | None = None  # a path's, opened here
        self._media: str | os.PathLike[str] | bytes | BinaryIO
        self._media = bytes(media) if isinstance(media, bytearray | memoryview) else media
        with self._reading():
            if isinstance(media, str | os.PathLike):
                self._file = _open_regular(media, self.name)
                self.head = _binary(self._file.read(_HEAD), self.name)
            elif isinstance(media, BytesLike):
                self.head = bytes(media[:_HEAD])
            elif _seekable(media):
                self._pos = media.tell()
                self.head = _binary(media.read(_HEAD), self.name)
                media.seek(self._pos)
            else:
                self._media = self._within(_binary(media.read(max_bytes + 1), self.name))
                self.head = self._media[:_HEAD]

    def __enter__(self) -> OpenedInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def read(self, deadline: float) -> bytes:
        """All of the input, hashed; ``MediaTooLarge`` past the byte limit without reading it
        all, ``ScreeningTimeout`` once ``deadline`` passes while it is hashed."""
        with self._reading():
            if self._file is not None:
                size = os.fstat(self._file.fileno()).st_size
                if size > self._max_bytes:
                    raise MediaTooLarge(f"{size} bytes, over the limit of {self._max_bytes}")
                self._file.seek(0)
                data = self._within(_binary(self._file.read(self._max_bytes + 1), self.name))
            elif isinstance(self._media, bytes):
                data = self._within(self._media)
            else:
                assert not isinstance(self._media, str | os.PathLike)  # opened as _file
                self._media.seek(self._pos)
                data = self._within(_binary(self._media.read(self._max_bytes + 1), self.name))
        digest = hashlib.sha256()
        _hash_bytes(data, digest, deadline)
        self.sha256 = digest.hexdigest()
        return data

    def stream(self, max_bytes: int, deadline: float) -> VideoInput:
        """What a video streams from (its path, bytes, or the file at its position), after
        hashing it in chunks; ``MediaTooLarge`` past ``max_bytes`` (the video limit),
        ``ScreeningTimeout`` once ``deadline`` passes between chunks."""
        digest = hashlib.sha256()
        media = self._media
        with self._reading():
            if isinstance(media, bytes):
                if len(media) > max_bytes:
                    raise MediaTooLarge(f"{len(media)} bytes, over the video limit of {max_bytes}")
                _hash_bytes(media, digest, deadline)
            elif self._file is not None:
                self._file.seek(0)
                _hash_file(self._file, digest, max_bytes, deadline)
            else:
                assert not isinstance(media, str | os.PathLike)
                media.seek(self._pos)
                _hash_file(media, digest, max_bytes, deadline)
                media.seek(self._pos)
        self.sha256 = digest.hexdigest()
        return media

    def _within(self, data: bytes) -> bytes:
        if len(data) > self._max_bytes:
            raise MediaTooLarge(f"more than {self._max_bytes} bytes, the configured limit")
        return data

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """The OS's errors while reading as ``MediaIOError``; ours (a timeout is an OSError
        too) pass."""
        try:
            yield
        except MediaError:
            raise
        except OSError as exc:
            raise MediaIOError(f"cannot read {self.name}: {exc.strerror or exc}") from exc


def _open_regular(path: str | os.PathLike[str], name: str) -> BinaryIO:
    """A path's file, if it is a regular file: a FIFO or a device would block the read (and
    the time budget, checked between reads, could not stop it), so those are refused. Opened
    without blocking, then checked, then read as usual."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsupportedMedia(f"{name} is not a regular file (a pipe or a device)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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
