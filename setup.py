"""The one compiled piece: the fast box evaluator's component tree (``wsol_utils/scoring/_component_tree.c``,
docs/methods.md §2.2). Everything else is configured in pyproject.toml.

The extension is ``optional``: where no C compiler is found the install goes on without it, and the evaluator
traces contours with OpenCV instead (the same numbers, 1.7x slower for the whole ``evaluate`` command on 1,000
maps: benchmarks/README.md; ``wsol_utils.scoring.boxeval``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "wsol_utils.scoring._component_tree", sources=["wsol_utils/scoring/_component_tree.c"], optional=True
        )
    ]
)
