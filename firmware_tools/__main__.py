"""``python -m firmware_tools`` is the ``edge-screen-fw`` command."""

import sys

from .cli import main

sys.exit(main())
