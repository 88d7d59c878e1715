"""Run one fuzz harness under atheris (libFuzzer, coverage-guided), e.g.

    python3 tests/fuzz/run.py policy -max_total_time=600 /tmp/policy-corpus tests/fuzz/corpus/policy

Arguments after the harness name go to libFuzzer as they are (``-runs=N``, ``-max_total_time=S``,
corpus directories: new inputs are written to the first). The per-input time limit
(``-timeout``), the RSS limit and the harness's dictionary are added unless given. A finding is
written as ``crash-*`` / ``timeout-*`` under ``-artifact_prefix`` (default: the working
directory) and the process exits non-zero (libFuzzer's way: run it in a subprocess).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent.parent))  # the checkout's edge_screen, not an installed one

import atheris  # noqa: E402
import harnesses  # noqa: E402


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in harnesses.HARNESSES:
        sys.exit(f"usage: run.py {{{','.join(harnesses.HARNESSES)}}} [libFuzzer args]")
    name, args = argv[1], argv[2:]
    given = {a.split("=")[0] for a in args if a.startswith("-")}
    extra = []
    if "-timeout" not in given:
        extra.append(f"-timeout={harnesses.TIMEOUT_S[name]}")
    if "-rss_limit_mb" not in given:
        extra.append(f"-rss_limit_mb={harnesses.RSS_LIMIT_MB[name]}")
    dictionary = HERE / "dict" / f"{name}.dict"
    if "-dict" not in given and dictionary.exists():
        extra.append(f"-dict={dictionary}")
    with atheris.instrument_imports(include=list(harnesses.INSTRUMENT[name])):
        # the pipeline, instrumented as it is imported
        import edge_screen.prepare
        import edge_screen.screener  # noqa: F401

        if name in ("screen", "prepare"):
            import PIL.Image

            PIL.Image.init()  # Pillow's plug-ins are imported lazily: instrument them now
    if name == "screen":
        harnesses._screener()  # the models load once, before the first input
    atheris.Setup([argv[0], *extra, *args], harnesses.HARNESSES[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
