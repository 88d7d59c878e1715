"""``python3 -m edge_screen.bench``: the same as ``edge-screen bench``."""

import sys

from . import run

if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
