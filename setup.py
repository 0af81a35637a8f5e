"""The two compiled pieces: the fast box evaluator's component tree (``wsol_utils/scoring/_component_tree.c``,
docs/methods.md §2.2) and the small backbone's fused CPU training kernels (``wsol_utils/nets/_fused_small.c``,
docs/methods.md §4.5). Everything else is configured in pyproject.toml.

Both extensions are ``optional``: where no C compiler is found the install goes on without them; the evaluator then
traces contours with OpenCV instead (the same numbers, 1.7x slower for the whole ``evaluate`` command on 1,000
maps: benchmarks/README.md; ``wsol_utils.scoring.boxeval``) and training uses PyTorch's layers (``kernels="auto"``
resolves to ``"torch"``: other float rounding, slower; ``wsol_utils.nets.fused``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "wsol_utils.scoring._component_tree", sources=["wsol_utils/scoring/_component_tree.c"], optional=True
        ),
        Extension("wsol_utils.nets._fused_small", sources=["wsol_utils/nets/_fused_small.c"], optional=True),
    ]
)
