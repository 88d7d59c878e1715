"""Shared inputs for the benchmarks, built once per session and never inside a timed call.

The photos are the same phone-like 12 MP JPEGs ``edge-screen bench`` makes, so a pytest-benchmark
figure and a bench report can be read side by side. The device, versions, bundle and git commit
go into pytest-benchmark's ``machine_info`` so every saved JSON says where it was measured.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edge_screen import Bundle, Screener, bench
from edge_screen.backends import available_backends, get_backend
from edge_screen.infer import Model

PHONE_MP = 12.0
BACKENDS = available_backends()


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    info = bench.device_info()
    try:
        info["bundle_version"] = Bundle.open().manifest.bundle_version
    except Exception as exc:  # the JSON still records why, the benchmarks will fail loudly
        info["bundle_version"] = f"unavailable: {exc}"
    machine_info["edge_screen"] = info


@pytest.fixture(scope="session")
def photos() -> tuple[tuple[str, bytes], ...]:
    """Three 12 MP phone JPEGs: one face, two faces, none."""
    return bench.make_inputs(3, PHONE_MP)


@pytest.fixture(scope="session")
def portrait(photos: tuple[tuple[str, bytes], ...]) -> bytes:
    return photos[0][1]


def reencode(data: bytes, megapixels: float, fmt: str, **kw: Any) -> bytes:
    """The same picture at another size and format, for the decode matrix."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    scale = (megapixels * 1e6 / (im.width * im.height)) ** 0.5
    if abs(scale - 1) > 1e-3:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BOX)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="session")
def bundle() -> Bundle:
    return Bundle.open()


@pytest.fixture(scope="session")
def screener() -> Any:
    """The default bundle with default threads: what an embedding engineer gets."""
    with Screener() as s:
        yield s


@pytest.fixture(scope="session")
def working_rgb(screener: Screener, portrait: bytes) -> np.ndarray:
    """The portrait decoded as the pipeline decodes it (draft mode, working size)."""
    return bench.working_decode(portrait, screener.options.working_min_side)



@pytest.fixture(scope="session")
def face(bundle: Bundle, working_rgb: np.ndarray) -> bench.Box:
    """The portrait's face box, for the age model's alignment."""
    spec = bundle.manifest.by_task("face_detection")[0]
    variant = bundle.select(spec)
    detector = Model(spec, variant, bundle.model_bytes(variant), get_backend(), 1)
    box = bench.face_box(detector, working_rgb)
    assert box is not None, "the portrait must show a face"
    return box


# TFLite models only: a landmark cascade (input None) is not an interpreter.
TFLITE = [m for m in Bundle.open().manifest.models if m.input is not None]
