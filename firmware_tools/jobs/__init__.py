"""Scripts that run inside the converter venv (TensorFlow 2.19, onnx2tf, numpy 1.26).

Each is started as ``python -m firmware_tools.jobs.<name> ...`` by ``pipeline.venv.run_module``
(or, for ``decision_model``, as a long-running server by ``studies.decision_make``) and talks to
the caller through files or pipes only. Only the stdlib is imported at module level, here and in
every job, so importing a job's module name from the main environment is safe; jobs import only
other jobs.
"""
