"""wsol_utils: a small, typed library for weakly supervised object localization (WSOL).

Modules (one job each):

- :mod:`wsol_utils.models`   -- backbones, classifier branches, the ``cam``/``acol``/``hclnet`` heads
  behind :func:`wsol_utils.models.create_model`.
- :mod:`wsol_utils.erasing`  -- ACoL threshold erasing and the HCLNet complementary map.
- :mod:`wsol_utils.fusion`   -- fusing the maps of two branches (``max``, ``add``, ``l1``).
- :mod:`wsol_utils.maps`     -- ``normalize_minmax``, the one per-map min-max normalization (wsoleval's).
- :mod:`wsol_utils.boxes`    -- what both wsoleval evaluators share: IoU, GT rescaling, thresholds, checks.
- :mod:`wsol_utils.metrics`  -- map -> box -> score, the papers' protocol and a literal wsoleval reference.
- :mod:`wsol_utils.boxeval`  -- the fast, wsoleval-identical MaxBoxAcc / MaxBoxAccV2 / PxAP evaluator.
- :mod:`wsol_utils.data`     -- the built-in synthetic data set, CUB-200-2011 and wsoleval metadata.
- :mod:`wsol_utils.engine`   -- one run API (train / evaluate) for all methods.
- :mod:`wsol_utils.viz`, :mod:`wsol_utils.widgets` -- figures and the JupyterLab explorer.

Submodules are imported lazily so that ``import wsol_utils`` stays cheap.
"""

__version__ = "0.1.0"
