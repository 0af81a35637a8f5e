"""Layer 2, scoring: map -> boxes -> scores, under a named protocol.

The :class:`~wsol_utils.scoring.protocol.Protocol` (the papers' tau 0.2, wsoleval's MaxBoxAcc), the one map scorer
(:mod:`~wsol_utils.scoring.scorer`), the papers' metrics and a literal wsoleval reference evaluator
(:mod:`~wsol_utils.scoring.metrics`), the fast evaluator (:mod:`~wsol_utils.scoring.boxeval`) and the map pipeline
from a model's output to scored maps (:mod:`~wsol_utils.scoring.pipeline`).

May import: :mod:`wsol_utils.base`, :mod:`wsol_utils.nets`.
"""
