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
# # 02 — Training ACoL: two classifiers, one erases what the other found
#
# ACoL (Zhang et al., CVPR 2018) adds a second classifier **B** beside the CAM classifier **A**. Both read the
# same backbone features $S$. A's map of the ground-truth class, min-max normalized to
# $\tilde M_A \in [0, 1]$, marks the most discriminative region; every cell where $\tilde M_A \ge \delta$ is
# **erased** from $S$ before B sees it:
#
# $$ S_B = S \odot \mathbb{1}[\tilde M_A < \delta], \qquad
# \mathcal{L} = \mathrm{CE}(\text{logits}_A, y) + \mathrm{CE}(\text{logits}_B, y). $$
#
# B must still classify, so it learns to use the *other* object regions. At test time the two maps are
# normalized and fused by an element-wise **max**; the box is the bounding box of the largest connected
# region above $\tau = 0.2$ of the max (docs/methods.md §2.1). The paper's threshold is $\delta = 0.6$.

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

# %% [markdown]
# ## Train CAM, ACoL ($\delta$ = 0.6) and HCLNet
#
# All three runs are cached: later notebooks reuse them.

# %%
runs = {"cam": suite.train("cam"), "acol": suite.train("acol", delta=0.6), "hclnet": suite.train("hclnet")}
for name, run in runs.items():
    print(f"{name:7s} {run}")

# %% [markdown]
# ## Loss curves
#
# Branch A and branch B losses of ACoL, and validation accuracy of all three.

# %%
histories = {name: pd.read_csv(run / "history.csv") for name, run in runs.items()}
fig = viz.plot_histories({"ACoL": histories["acol"]}, panels=[("cross-entropy", ("train_loss_a", "train_loss_b"))])
suite.publish(fig, "loss_curves.png")
fig = viz.plot_histories(histories, panels=[("train loss", ("train_loss",)), ("val accuracy (%)", ("val_acc",))])
suite.publish(fig, "training_curves.png")

# %% [markdown]
# ## Branch A, branch B and the fused map (the paper's Figure 5)
#
# Same test images in every column. White: ground-truth box; red: the box at $\tau$ = 0.2 of that column's map.

# %%
examples = example_maps(runs["acol"], count=6, fusion="max")
columns = {"branch A": examples.maps["a"], "branch B": examples.maps["b"], "fused (max)": examples.maps["fused"]}
fig = viz.plot_map_grid(
    examples.images,
    columns,
    gt_boxes=examples.gt_boxes,
    boxes={"branch A": examples.boxes["a"], "branch B": examples.boxes["b"], "fused (max)": examples.boxes["fused"]},
)
suite.publish(fig, "acol_maps.png")
print("IoU with the GT box per image:")
display(pd.DataFrame({k: examples.ious[k] for k in ("a", "b", "fused")}).round(2))

# %% [markdown]
# ## The localization table
#
# Our numbers on the chosen data set; the `paper` columns are the published CUB-200-2011 / VGG16 numbers (HCLNet
# Table 1, wsoleval), for orientation only — a different data set and backbone. ACoL is evaluated with max fusion,
# HCLNet with addition (their papers' choices).

# %%
results = {
    "cam": suite.evaluate(runs["cam"]),
    "acol": suite.evaluate(runs["acol"], fusion="max"),
    "hclnet": suite.evaluate(runs["hclnet"], fusion="add"),
}
localization = tables.localization_table({name: r.summary for name, r in results.items()})
paths = tables.write_table(
    localization,
    suite.figures_dir,
    "table_localization",
    title="Localization on the chosen data set (errors %, MaxBoxAcc %)",
)
display(localization.round(2))
print("per-branch metrics of ACoL (MaxBoxAcc is scored on the fused map only):")
display(results["acol"].table()[["cls_err_top1", "gt_known_loc_acc", "maxboxacc", "maxboxacc_v2"]].round(2))

# %% [markdown]
# ## Reading

# %%
cam_s, acol_s = results["cam"].summary, results["acol"].summary
n = int(acol_s["num_images"])
display(
    Markdown(
        "\n\n".join(
            [
                compare(
                    "ACoL",
                    acol_s["gt_known_loc_acc"],
                    "CAM",
                    cam_s["gt_known_loc_acc"],
                    metric="GT-known loc accuracy (tau 0.2)",
                    n=n,
                ),
                compare("ACoL", acol_s["maxboxacc_v2"], "CAM", cam_s["maxboxacc_v2"], metric="MaxBoxAccV2", n=n),
                compare(
                    "ACoL",
                    acol_s["cls_acc_top1"],
                    "CAM",
                    cam_s["cls_acc_top1"],
                    metric="top-1 classification accuracy",
                    n=n,
                ),
            ]
        )
    )
)
