"""Rebuild cpp_arrays.json: the reference C++'s hashes of the arrays tests/test_pdq.py builds.

    python3 tests/data/pdq/make_cpp_arrays.py /path/to/ThreatExchange

needs g++ and a checkout of facebook/ThreatExchange (the README here names the commit used).
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SOURCES = ["hashing/pdqhashing.cpp", "hashing/torben.cpp", "downscaling/downscaling.cpp",
           "common/pdqhashtypes.cpp"]
NAMES = ["original", "rotate90", "rotate180", "rotate270", "flipx", "flipy", "flip_plus1",
         "flip_minus1"]


def hex_of(words: np.ndarray) -> str:
    return "".join(f"{int(w):04x}" for w in words[::-1])  # Hash256::format: word 15 first


def main(threatexchange: Path) -> None:
    sys.path.insert(0, str(HERE.parents[1]))  # tests/, for test_pdq's array builders
    from test_pdq import GENERATED

    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "libpdqref.so"
        cpp = [str(threatexchange / "pdq" / "cpp" / s) for s in SOURCES]
        subprocess.run(["g++", "-O3", "-std=c++14", "-shared", "-fPIC", f"-I{threatexchange}",
                        str(HERE / "reference_hashes.cpp"), *cpp, "-o", str(lib)], check=True)
        ref = ctypes.CDLL(str(lib))
        ptr, cint = ctypes.c_void_p, ctypes.c_int
        ref.pdq_reference.argtypes = [ptr, cint, cint, ptr, ptr, ptr, ptr]
        out = {}
        for name, build in GENERATED.items():
            rgb = np.ascontiguousarray(build(), dtype=np.uint8)
            words, dihedral = np.zeros(16, np.uint16), np.zeros(128, np.uint16)
            quality, dihedral_quality = cint(), cint()
            ref.pdq_reference(rgb.ctypes.data, rgb.shape[0], rgb.shape[1], words.ctypes.data,
                              ctypes.byref(quality), dihedral.ctypes.data,
                              ctypes.byref(dihedral_quality))
            out[name] = {
                "shape": list(rgb.shape),
                "hash": hex_of(words),
                "quality": quality.value,
                "dihedral": {n: hex_of(dihedral[16 * k : 16 * k + 16]) for k, n in enumerate(NAMES)},
                "dihedral_quality": dihedral_quality.value,
            }
    (HERE / "cpp_arrays.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
