"""wsol_utils: a small, typed library for weakly supervised object localization (WSOL).

One subpackage per layer; a lower layer never imports a higher one (``tests/test_imports.py``,
docs/ARCHITECTURE.md):

0. :mod:`wsol_utils.base`    -- plain utilities (atomic writes, digests).
1. :mod:`wsol_utils.nets`    -- backbones, map methods, models (``create_model``), erasing, fusion, maps.
2. :mod:`wsol_utils.scoring` -- the Protocol, the map scorer, the papers' metrics, the fast wsoleval evaluator.
3. :mod:`wsol_utils.data`    -- the built-in synthetic data set, CUB-200-2011, ILSVRC / wsoleval metadata.
4. :mod:`wsol_utils.engine`  -- one run API (train / evaluate), run folders, baselines, other CAM libraries.
5. :mod:`wsol_utils.studies` -- statistics, analyses, tables, provenance.
6. :mod:`wsol_utils.ui`      -- the notebooks' Suite and study design, figures, the explorer, the command lines.

Submodules are imported lazily so that ``import wsol_utils`` stays cheap.
"""

__version__ = "0.1.0"
