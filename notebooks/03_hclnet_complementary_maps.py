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

# %% [markdown]
# # 03 — HCLNet: the complementary map instead of a hard threshold
#
# ACoL erases with a hard threshold, $S_B = S \odot \mathbb{1}[\tilde M_A < \delta]$: below $\delta$ nothing
# changes, above it everything is gone, and $\delta$ must be tuned. HCLNet's **complementary CAM** (C-CAM)
# multiplies instead by the complement of the normalized map, with no threshold:
#
# $$ S_B = S \odot (1 - \tilde M_A). $$
#
# The most discriminative cell is removed completely, weakly activated cells are kept almost intact and
# everything in between is attenuated smoothly. The paper reports that this helps *classification* (branch B
# is not starved of evidence) as well as localization. Below: what each variant feeds branch B, what B
# learns, and the numbers side by side.

# %%
import pandas as pd
import torch
from IPython.display import Markdown, display

from wsol_utils import tables, viz
from wsol_utils.pipeline import example_maps
from wsol_utils.stats import compare
from wsol_utils.suite import Suite

suite = Suite.from_parameters(DATASET, DATA_ROOT, EPOCHS, DEVICE, SMOKE, RUNS_DIR, FIGURES_DIR, PROGRESS)
torch.manual_seed(0)
print(f"data set: {suite.dataset}; smoke mode: {suite.smoke}; figures go to {suite.figures_dir}")

# %%
runs = {"acol": suite.train("acol", delta=0.6), "hclnet": suite.train("hclnet")}
examples = {name: example_maps(run, count=5) for name, run in runs.items()}

# %% [markdown]
# ## What branch B sees, and what it learns
#
# Columns: A's map; the weight B's features are multiplied by (ACoL: the binary mask $\tilde M_A < 0.6$; HCLNet:
# $1 - \tilde M_A$); B's map. White: ground-truth box.

# %%
acol, hcl = examples["acol"], examples["hclnet"]
columns = {
    "A (ACoL)": acol.maps["a"],
    "B input: M_A < 0.6": acol.maps["b_input"],
    "B map (ACoL)": acol.maps["b"],
    "A (HCLNet)": hcl.maps["a"],
    "B input: 1 - M_A": hcl.maps["b_input"],
    "B map (HCLNet)": hcl.maps["b"],
}
fig = viz.plot_map_grid(acol.images, columns, gt_boxes=acol.gt_boxes)
suite.publish(fig, "complementary_maps.png")

# %% [markdown]
# ## Classification and localization side by side
#
# `B mass on object` is the share of branch B's map that lies on the object's pixel mask (where the data set has
# masks): how much B moved off the part A found and onto the object.

# %%
from wsol_utils.analysis import branch_comparison

results = {
    "ACoL (threshold)": suite.evaluate(runs["acol"], fusion="max"),
    "HCLNet (C-CAM)": suite.evaluate(runs["hclnet"], fusion="add"),
}
side_by_side = branch_comparison(results)
tables.write_table(
    side_by_side,
    suite.figures_dir,
    "table_erasing_vs_complementary",
    title="Thresholded erasing vs. complementary map (ours)",
    note="All numbers measured by this suite.",
)
display(side_by_side.round(2))

# %% [markdown]
# ## Reading

# %%
acol_s, hcl_s = (r.summary for r in results.values())
n = int(hcl_s["num_images"])
display(
    Markdown(
        "\n\n".join(
            [
                compare(
                    "HCLNet",
                    hcl_s["cls_acc_top1"],
                    "ACoL",
                    acol_s["cls_acc_top1"],
                    metric="top-1 classification accuracy",
                    n=n,
                ),
                compare(
                    "HCLNet",
                    hcl_s["gt_known_loc_acc"],
                    "ACoL",
                    acol_s["gt_known_loc_acc"],
                    metric="GT-known loc accuracy (tau 0.2)",
                    n=n,
                ),
                compare("HCLNet", hcl_s["maxboxacc_v2"], "ACoL", acol_s["maxboxacc_v2"], metric="MaxBoxAccV2", n=n),
            ]
        )
    )
)
