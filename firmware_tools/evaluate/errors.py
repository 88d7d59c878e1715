"""The evaluation's one error: a run that cannot start or go on, with the reason to act on."""

from __future__ import annotations

from edge_screen.errors import EdgeScreenError


class EvaluationError(EdgeScreenError, RuntimeError):
    """A corpus, labels file, output directory or cluster the evaluation cannot use; or a run
    that stopped early (a worker died), whose finished shards a rerun keeps."""
