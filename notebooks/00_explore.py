# %% tags=["parameters"]
# Parameters (papermill overrides these; `python -m wsol_utils reproduce` passes them all).
DATASET = "synthetic"  # "synthetic" (built in), "cub" or "wsoleval"
DATA_ROOT = None  # the data set folder for cub / wsoleval
EPOCHS = None  # None: the engine's default for the data set
DEVICE = "auto"  # "auto", "cpu", "cuda", ...
SMOKE = False  # tiny data and 1 epoch (also on when the environment sets WSOL_SMOKE to 1)
RUNS_DIR = "../runs"  # the engine's run cache, shared by all notebooks
FIGURES_DIR = None  # None: ../figures, or ../outputs/smoke/figures in smoke mode
PROGRESS = False  # progress bars (off under test: nbval compares stderr)

# The explorer's knobs (the widgets start here; the static figures use exactly these values).
RUN_DIR = None  # a trained run folder; None: train / reuse the suite's ACoL run (METHOD below)
METHOD = "acol"  # "cam", "acol" or "hclnet" when RUN_DIR is None
IMAGE_INDEX = 0  # test image to show
DELTA = None  # test-time erasing threshold; None: the run's training delta
FUSION = None  # "max", "add", "l1"; None: the run's (ACoL: max, HCLNet: add)
TAU = 0.2  # box threshold, a fraction of the map's max
SAMPLE_SIZE = 64  # the accuracy is computed over the first SAMPLE_SIZE test images
COMPARE_RUN_DIRS = None  # runs to compare; None: the threshold-sweep runs (one ACoL run per delta)

# %% [markdown]
# # 00 — Explore a trained run: the erasing threshold $\delta$, the fusion and the boxes
#
# ACoL's central knob is the erasing threshold $\delta$: branch B sees the features where branch A's normalized
# map is **below** $\delta$, $S_B = S \odot \mathbb{1}[\tilde M_A < \delta]$ (ACoL Algorithm 1). A trained model
# can be given another $\delta$ at test time: it changes only what branch B sees, hence B's map, the fused map
# and the boxes. The explorer below lets you move $\delta$, the fusion (`max` = ACoL, `add` / `l1` = HCLNet) and
# the box threshold $\tau$, and shows for one image the ground truth (white) and predicted boxes with their IoU,
# B's input, and the maps of A, B and the fused map; the line above the figure gives the GT-known localization
# accuracy over a fixed sample of test images (IoU $\ge 0.5$), recomputed in one batched pass per knob change
# and cached, so moving a slider back is instant. The numbers are those of `wsol_utils.engine.evaluate`.
#
# The widgets need a live kernel. Below each one, a static figure renders the same view for the notebook's
# parameters, so the executed notebook (papermill, `make test`) shows it too.

# %%
import pandas as pd
import torch
from IPython.display import Markdown, display

from wsol_utils.engine import example_maps
from wsol_utils.studies import tables
from wsol_utils.ui import viz
from wsol_utils.ui.suite import Suite

suite = Suite.from_parameters(DATASET, DATA_ROOT, EPOCHS, DEVICE, SMOKE, RUNS_DIR, FIGURES_DIR, PROGRESS)
torch.manual_seed(0)
print(f"data set: {suite.dataset}; smoke mode: {suite.smoke}; figures go to {suite.figures_dir}")

# %%
from pathlib import Path

from IPython.display import Image

from wsol_utils.ui.widgets import Explorer, Knobs, compare_runs, explore, explore_comparison, figure_png, render_view

run_dir = Path(RUN_DIR) if RUN_DIR is not None else suite.train(METHOD)
explorer = Explorer(run_dir, sample_size=SAMPLE_SIZE, device=DEVICE)
print(
    f"run {run_dir.name}: {explorer.method}, trained with delta {explorer.config.delta:.2f}; "
    f"{explorer.num_images} test images, accuracy over the first {explorer.sample_size}"
)

# %% [markdown]
# ## The explorer
#
# Type an image index, move the sliders (the view updates when you release them).

# %%
explore(explorer, IMAGE_INDEX, DELTA, FUSION, TAU)

# %% [markdown]
# ### The same view, static (for the parameters above)

# %%
view = explorer.view(Knobs(IMAGE_INDEX, DELTA, FUSION, TAU))
fig = render_view(view)
viz.save_figure(fig, suite.figure_path("explorer_view.png"))
display(Image(figure_png(fig)))
print(" | ".join(f"{name}: IoU {iou:.2f}" for name, iou in view.ious.items()))

# %% [markdown]
# ### What the test-time $\delta$ does to the sample's accuracy
#
# The same run, the same sample, $\delta$ from 0.5 to 0.9 at test time (only branch B and the fused map can move;
# a CAM or HCLNet run has no $\delta$, so its rows are equal).

# %%
rows = []
for delta in tables.DELTAS:
    scores = explorer.sample_scores(Knobs(IMAGE_INDEX, delta, FUSION, TAU))
    rows.append({"test-time delta": delta, **{f"GT-known loc {b} (%)": acc for b, acc in scores.accuracy.items()}})
display(pd.DataFrame(rows).round(1))

# %% [markdown]
# ## Runs trained with different $\delta$ on the same image
#
# One row per run of the threshold sweep (notebook 05, ACoL Table 6; the runs are shared through the run
# cache), each shown at its own training $\delta$.

# %%
compare_dirs = (
    COMPARE_RUN_DIRS if COMPARE_RUN_DIRS is not None else [suite.train("acol", delta=delta) for delta in tables.DELTAS]
)
explore_comparison(compare_dirs, IMAGE_INDEX, TAU, sample_size=SAMPLE_SIZE, device=DEVICE)

# %% [markdown]
# ### The comparison, static

# %%
fig = compare_runs(compare_dirs, IMAGE_INDEX, tau=TAU, sample_size=SAMPLE_SIZE)
viz.save_figure(fig, suite.figure_path("explorer_compare.png"))
display(Image(figure_png(fig)))
