"""Reading an input: opened once, its head probed, then read whole (a still) or hashed and
streamed (a video); a stream that cannot be rewound is read whole when it is opened."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import IMAGES
from test_video import clip, timeline

from edge_screen import ScreenerOptions
from edge_screen import source as source_module
from edge_screen.errors import MediaTooLarge
from edge_screen.prepare import prepare
from edge_screen.source import OpenedInput

FAR = time.perf_counter() + 3600


class Pipe(io.RawIOBase):
    """A binary stream that cannot be rewound (a socket, a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        return self._data.read(n)


@pytest.fixture(scope="module")
def video() -> bytes:
    return clip(timeline(3, lambda i: False))


def test_a_path_is_opened_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, video: bytes
) -> None:
    """The probe's head and the still's bytes (or the video's hash) come from one open file."""
    opened: list[object] = []

    real = source_module._open_regular

    def counting(path: Any, *args: Any, **kw: Any) -> Any:
        opened.append(path)
        return real(path, *args, **kw)

    monkeypatch.setattr(source_module, "_open_regular", counting)
    (tmp_path / "clip").write_bytes(video)
    for path in (IMAGES / "astronaut.jpg", tmp_path / "clip"):
        opened.clear()
        p = prepare(path, ScreenerOptions())
        assert p.error is None and p.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert opened == [path]
        if p.clip is not None:
            p.clip.close()


@pytest.mark.parametrize("kind", ["still", "video"])
def test_a_stream_that_cannot_be_rewound_is_read_whole(video: bytes, kind: str) -> None:
    data = (IMAGES / "astronaut.jpg").read_bytes() if kind == "still" else video
    p = prepare(Pipe(data), ScreenerOptions())
    assert p.error is None, p.error
    assert p.sha256 == hashlib.sha256(data).hexdigest()
    assert (p.image is not None) == (kind == "still")
    if p.clip is not None:
        assert p.clip.info.kind == "video"
        p.clip.close()


def test_a_seekable_file_is_read_from_where_it_stands() -> None:
    data = (IMAGES / "astronaut.jpg").read_bytes()
    fh = io.BytesIO(b"junk" + data)
    fh.seek(4)
    with OpenedInput(fh, 1 << 30) as src:
        assert src.head == data[:64]
        assert src.read(FAR) == data and fh.tell() == 4 + len(data)
        assert src.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("media", ["bytes", "pipe", "file"])
def test_the_byte_limits_apply_to_stills_and_videos(media: str, video: bytes) -> None:
    def make() -> Any:
        return {"bytes": video, "pipe": Pipe(video), "file": io.BytesIO(video)}[media]

    if media == "pipe":  # read whole when opened: the still's limit applies at once
        with pytest.raises(MediaTooLarge):
            OpenedInput(make(), len(video) - 1)
    else:
        with OpenedInput(make(), len(video) - 1) as src, pytest.raises(MediaTooLarge):
            src.read(FAR)
    with OpenedInput(make(), len(video)) as src, pytest.raises(MediaTooLarge):
        src.stream(len(video) - 1, FAR)
    with OpenedInput(make(), len(video)) as src:
        src.stream(len(video), FAR)
        assert src.sha256 == hashlib.sha256(video).hexdigest()
