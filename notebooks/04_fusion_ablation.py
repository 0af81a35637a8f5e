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
# # 04 — Fusion ablation (HCLNet Table 4)
#
# Two choices make the method: how branch B's input is built (**threshold** erasing as ACoL, or the
# **C-CAM** complement) and how the two maps are fused at test time. With both maps normalized per class to
# $[0, 1]$ (docs/methods.md §1.5):
#
# * **max** (ACoL): $F = \max(M_A, M_B)$;
# * **add** (HCLNet eq. 1): $F = M_A + M_B$;
# * **l1** (HCLNet eqs. 2–5): activity $\mathcal{M}_i = \sum_c |f_i^c|$, block-averaged over a $3\times 3$
#   window to $\hat{\mathcal{M}}_i$, weights $w_i = \hat{\mathcal{M}}_i / (\hat{\mathcal{M}}_1 + \hat{\mathcal{M}}_2)$,
#   $F^c = w_1 f_1^c + w_2 f_2^c$.
#
# Fusion is test-time only, so the 3 x 2 grid needs only the two trained runs. Classification errors do not
# depend on the fusion (it only changes the map). The `paper CUB` columns are HCLNet's Table 4 (CUB-200-2011,
# VGG16) — the published numbers, not ours.

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
runs = {"threshold": suite.train("acol", delta=0.6), "C-CAM": suite.train("hclnet")}
ablation = {
    (erasing, fusion): suite.evaluate(run, fusion=fusion).summary
    for erasing, run in runs.items()
    for fusion in tables.FUSIONS
}
table = tables.fusion_ablation_table(ablation)
tables.write_table(
    table,
    suite.figures_dir,
    "table_hclnet_fusion_ablation",
    title="HCLNet Table 4 on the chosen data set: erasing x fusion (errors %)",
)

# %%
# NBVAL_CHECK_OUTPUT
print(table.shape, list(table["erasing"] + " + " + table["fusion"]))

# %%
display(table.round(2))

# %% [markdown]
# ## Reading

# %%
from wsol_utils.analysis import best_row

n = int(next(iter(ablation.values()))["num_images"])
best = best_row(table, "GT-known loc err", lower_is_better=True)
base, full = ablation[("threshold", "max")], ablation[("C-CAM", "add")]
paper = tables.HCLNET_TABLE4_CUB
display(
    Markdown(
        "\n\n".join(
            [
                f"Lowest GT-known loc error: **{best['erasing']} + {best['fusion']}** ({best['GT-known loc err']:.1f}%).",
                compare(
                    "C-CAM + add",
                    full["gt_known_loc_acc"],
                    "threshold + max",
                    base["gt_known_loc_acc"],
                    metric="GT-known loc accuracy",
                    n=n,
                ),
                compare(
                    "C-CAM + add",
                    full["loc_acc_top1"],
                    "threshold + max",
                    base["loc_acc_top1"],
                    metric="top-1 loc accuracy",
                    n=n,
                ),
                "For orientation, the paper's CUB numbers: C-CAM + add is "
                f"{paper[('threshold', 'max')]['loc_err_top1'] - paper[('C-CAM', 'add')]['loc_err_top1']:.2f} points and "
                f"C-CAM + l1 {paper[('threshold', 'max')]['loc_err_top1'] - paper[('C-CAM', 'l1')]['loc_err_top1']:.2f} "
                "points below threshold + max in top-1 loc error.",
            ]
        )
    )
)
