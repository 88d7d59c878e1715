"""``python -m edge_screen scan|bench ...``: the CLI without relying on a console script."""

from .cli import main

raise SystemExit(main())
