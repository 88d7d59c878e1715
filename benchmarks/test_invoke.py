"""Invoke: each model's interpreter on a preallocated input (what LiteRT's ``benchmark_model``
times), per variant, thread count and backend; and ``Model.run``, which adds quantising the
input and dequantising the outputs, to show what the wrapper costs on top.

Thread counts above the CPU count are kept (QA compares 4-core devices with these numbers) but
oversubscribe a 2-core machine, so read them as such there.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKENDS, TFLITE
from pytest_benchmark.fixture import BenchmarkFixture

from edge_screen import Bundle, bench
from edge_screen.backends import get_backend
from edge_screen.infer import Model

CASES = [(m.id, v.name) for m in TFLITE for v in m.variants]
IDS = [f"{m}-{v}" for m, v in CASES]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize(("model_id", "variant"), CASES, ids=IDS)
def test_invoke_only(
    benchmark: BenchmarkFixture,
    bundle: Bundle,
    model_id: str,
    variant: str,
    threads: int,
    backend: str,
) -> None:
    v = next(m for m in bundle.manifest.models if m.id == model_id).variant(variant)
    inv = bench.InvokeOnly(bundle.model_bytes(v), get_backend(backend), threads)
    benchmark.extra_info.update(threads=threads, backend=backend, variant=variant, bytes=v.size)
    outputs = benchmark(inv.invoke)
    assert outputs and all(np.isfinite(o.astype(np.float32)).all() for o in outputs)


@pytest.mark.parametrize(("model_id", "variant"), CASES, ids=IDS)
def test_model_run(
    benchmark: BenchmarkFixture,
    bundle: Bundle,
    working_rgb: np.ndarray,
    face: bench.Box,
    model_id: str,
    variant: str,
) -> None:
    spec = next(m for m in bundle.manifest.models if m.id == model_id)
    v = spec.variant(variant)
    model = Model(spec, v, bundle.model_bytes(v), get_backend(), 2)
    x = bench.model_input(spec, working_rgb, face)
    benchmark.extra_info.update(threads=2, variant=variant)
    outputs = benchmark(model.run, x)
    assert outputs and all(np.isfinite(o).all() for o in outputs)
