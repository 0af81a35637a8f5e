"""Layer 6, user interface: every front door.

The notebooks' :class:`~wsol_utils.ui.suite.Suite` and the study design they run
(:mod:`~wsol_utils.ui.experiments`), figures (:mod:`~wsol_utils.ui.viz`), the JupyterLab explorer
(:mod:`~wsol_utils.ui.widgets`), the notebook runner behind ``make reproduce`` (:mod:`~wsol_utils.ui.reproduce`),
the static site (:mod:`~wsol_utils.ui.site`) and the command lines of ``python -m wsol_utils``
(``*_cli`` modules).

May import: every lower layer. Nothing imports it but ``wsol_utils.__main__``.
"""
