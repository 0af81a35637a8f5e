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
# Fusion is test-time only, so the 3 x 2 grid needs only the two trained models, each trained once per seed of the
# suite (`suite.seeds`, each its own data draw): every cell is the mean over the seeds with its 95% Student-t
# interval, cut to [0, 100]. Maps are label-free (branch B erased with the predicted class).
# Classification errors do not depend on the fusion (it only changes the map). The protocol is named in every
# column: `@0.2 (papers)` is the papers' box at $\tau$ = 0.2 of the max (docs/methods.md §2.1), `(wsoleval)` the
# best threshold per metric (§2.2). The `paper CUB` columns are HCLNet's Table 4 (CUB-200-2011, VGG16) — the
# published numbers, not ours.

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
from wsol_utils.engine import load_run
from wsol_utils.studies.analysis import aggregate_summaries, name_protocols, top5_informative, top5_note

runs = {"threshold": suite.train_seeds("acol", delta=0.6), "C-CAM": suite.train_seeds("hclnet")}
run_dirs = [run for per_seed in runs.values() for run in per_seed.values()]
seeds = list(suite.seeds)
evaluations = {
    (erasing, fusion): suite.evaluate_seeds(per_seed, fusion=fusion)
    for erasing, per_seed in runs.items()
    for fusion in tables.FUSIONS
}
ablation = {cell: aggregate_summaries([r.summary for r in by_seed.values()]) for cell, by_seed in evaluations.items()}
num_classes = load_run(run_dirs[0])[1].num_classes
table = name_protocols(tables.fusion_ablation_table(ablation), drop_top5=not top5_informative(num_classes))
top5_left_out = top5_note(num_classes, kept="the paper's CUB top-5 columns stay")  # "" when top-5 says something
paths = tables.write_table(
    table,
    suite.figures_dir,
    "table_hclnet_fusion_ablation",
    title=f"HCLNet Table 4 on the chosen data set: erasing x fusion (errors %; ours: {len(seeds)} seeds)",
    note=(
        f"Ours: test split, mean over the training seeds {seeds} [95% t interval within 0-100]; each seed its own "
        "data draw; label-free maps; per-seed values in table_hclnet_fusion_ablation_per_seed.csv. "
        "'@0.2 (papers)': the papers' protocol (a box at tau = 0.2 of the max); '(wsoleval)': wsoleval's protocol "
        "(the best threshold per metric). Classification does not depend on the fusion. Columns starting with "
        "'paper' are HCLNet's published Table 4 (CUB-200-2011, VGG16, the papers' protocol), copied for "
        "comparison, never mixed with ours." + top5_left_out
    ),
    provenance=suite.provenance(*run_dirs),
)

# %%
# NBVAL_CHECK_OUTPUT
print(table.shape, list(table["erasing"] + " + " + table["fusion"]))

# %%
display(tables.with_interval_cells(table, digits=2))

# %% [markdown]
# ## The three fusions on the same maps (HCLNet, seed 0)
#
# Fusion is test-time only: the same two branch maps, combined by max, addition or the l1-norm weights.

# %%
fused = {name: example_maps(runs["C-CAM"][seeds[0]], count=4, fusion=name) for name in tables.FUSIONS}
first = fused[tables.FUSIONS[0]]
columns = {"branch A": first.maps["a"], "branch B": first.maps["b"]}
columns.update({f"fused ({name})": fused[name].maps["fused"] for name in tables.FUSIONS})
boxes = {f"fused ({name})": fused[name].boxes["fused"] for name in tables.FUSIONS}
fig = viz.plot_map_grid(first.images, columns, gt_boxes=first.gt_boxes, boxes=boxes)
suite.publish(fig, "fusion_maps.png", provenance=suite.provenance(runs["C-CAM"][seeds[0]]))

# %% [markdown]
# ## Reading
#
# Every cell minus ACoL's own setting (threshold + max), paired by seed (the same seed's models), with the 95%
# t-interval of the differences over the seeds; a difference is stated only when its interval excludes 0.
# Exploratory: not part of the primary family.

# %%
from wsol_utils.studies.analysis import paired_differences, paired_readings, run_frame

READ = [
    ("top-1 loc @0.2 (papers)", "top-1 loc accuracy", "the papers' protocol (tau 0.2)"),
    ("GT-known loc @0.2 (papers)", "GT-known loc accuracy", "the papers' protocol (tau 0.2)"),
    ("MaxBoxAccV2 (wsoleval)", "MaxBoxAccV2", "wsoleval's protocol"),
]
BASE = "threshold + max"
cells = [f"{erasing} + {fusion}" for erasing, fusion in evaluations]
frame = run_frame(
    {(cell, seed): r for cell, by_seed in zip(cells, evaluations.values()) for seed, r in by_seed.items()},
    ("cell", "seed"),
).assign(split="test")
tables.write_table(
    frame,
    suite.figures_dir,
    "table_hclnet_fusion_ablation_per_seed",
    title="HCLNet Table 4 on the chosen data set, every seed (accuracies %)",
    note="All numbers measured by this suite, test split; label-free maps.",
    provenance=suite.provenance(*run_dirs),
)
differences = paired_differences(frame, ["split"], [value for value, *_ in READ], against=BASE, column="cell")
display(tables.with_interval_cells(differences.drop(columns="split"), digits=1))

# %%
lines = [paired_readings(frame, ("C-CAM + add", BASE), READ, column="cell")]
for row in differences[differences["cell"] != "C-CAM + add"].to_dict("records"):
    beyond = [reading for reading in READ if row[f"{reading[0]} excludes 0"]]
    if beyond:
        lines.append(paired_readings(frame, (row["cell"], BASE), beyond, column="cell"))
if len(lines) == 1:
    lines.append(
        f"No other cell differs from {BASE} in these three metrics by an interval (over {len(seeds)} seeds) "
        "that excludes 0."
    )
paper = tables.HCLNET_TABLE4_CUB
lines.append(
    "For orientation only (published, CUB-200-2011 / VGG16, not ours): in the paper C-CAM + add is "
    f"{paper[('threshold', 'max')]['loc_err_top1'] - paper[('C-CAM', 'add')]['loc_err_top1']:.2f} points and "
    f"C-CAM + l1 {paper[('threshold', 'max')]['loc_err_top1'] - paper[('C-CAM', 'l1')]['loc_err_top1']:.2f} "
    "points below threshold + max in top-1 loc error (the papers' protocol; one run each, no interval given)."
)
display(Markdown("\n\n".join(lines)))
