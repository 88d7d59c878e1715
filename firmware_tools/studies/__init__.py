"""Studies that measured a design choice, and makers of committed test data.

Measurements quoted by the model card and the docs: ``face_recall`` (recall by face size, tiles),
``age_floor`` (smallest face worth an age), ``age_sensitivity`` (age vs chip shift),
``calibrate_alignment`` (writes ``data/age_alignment.json``). Test data: ``synth`` (tensor-level
open_nsfw inputs in ``data/open_nsfw_synthetic.npz``) and ``decision`` (photos in
``tests/data/decision`` that reach review and hold through ``screen()``, with
``decision_make``, ``decision_child``, ``decision_measure``). Studies may use the pipeline and
the jobs; nothing outside ``studies`` and ``tests/firmware_tools`` imports them.
"""
