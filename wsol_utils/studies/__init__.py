"""Layer 5, studies: from scored runs to conclusions.

Intervals, paired tests and Holm's correction (:mod:`~wsol_utils.studies.stats`), per-seed and paired analyses
(:mod:`~wsol_utils.studies.analysis`), the tables (:mod:`~wsol_utils.studies.tables`), provenance stamps
(:mod:`~wsol_utils.studies.provenance`) and the check that a fresh figures folder reproduces the committed one
(:mod:`~wsol_utils.studies.compare_figures`).

May import: every lower layer (base, nets, scoring, data, engine).
"""
