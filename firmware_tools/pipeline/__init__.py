"""The build pipeline: ``fetch`` -> ``convert`` -> ``validate`` -> ``bundle`` (and ``card``),
driven by the recipe in ``firmware_tools/data/`` and run in a work directory (``recipe.Work``).

Conversion runs in the converter venv (``venv``) through the ``firmware_tools.jobs`` scripts;
calibration and held-out images are built in code (``datasets``, ``face_scenes``,
``composite``). Nothing here imports ``firmware_tools.studies``.
"""
