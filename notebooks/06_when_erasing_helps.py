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
# # 06 — When does erasing help? The regime map: receptive field x part size
#
# ACoL erases the cells where A's normalized map is high, $\tilde M_A \ge \delta$, and hopes that B, denied
# the most discriminative part, learns the rest of the object. HCLNet feeds B the features weighted by $1 - M_A$.
# Both act on **map cells**, not on pixels. A cell at stride $s$ with receptive field $R$ px sees a part of size
# $p$ px whenever their windows overlap, which is true for about
#
# $$ n \approx \frac{R + p}{s} \quad \text{cells per axis.} $$
#
# With a field much larger than the part, the ring of cells around the erased peak still sees the part; with a
# field smaller than the part, the erased cells may cover it all. Whether that decides what erasing does is the
# question; this notebook measures, per cell, what the methods do and where branch B's map goes, and claims no
# mechanism beyond what those numbers show.
#
# **Design (exploratory, fixed in `wsol_utils.ui.experiments.REGIME_CELLS`)**: three cells spanning field / head from
# 0.57 to 2.6, each trained to the instrument's standard (5,000 images, 6 epochs, 5 seeds, each seed its own data
# draw), for CAM, ACoL ($\delta$ = 0.6, the paper's value) and HCLNet; the 8 px / 7 px cell *is* the main
# comparison's runs. A cell counts only when its CAM reaches 90% val top-1; otherwise it is marked not converged and
# left out of the colour scale. Receptive field, stride and map size move together in this backbone, so each cell
# reports all three. Nothing here is corrected for multiplicity: read it as exploration, not as a result.
#
# This notebook needs the synthetic set's part masks and knobs; on CUB or ILSVRC it says so and stops.

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

# %% [markdown]
# ## The cells and their geometry
#
# `head_geometry` reads the receptive field and stride off the model; "cells seeing the head" is $(R + p) / s$.

# %%
from wsol_utils.studies.analysis import head_geometry
from wsol_utils.ui import experiments

SYNTHETIC = suite.dataset == "synthetic"
CELLS = experiments.REGIME_CELLS
if SYNTHETIC:
    geometry = pd.DataFrame(
        [head_geometry(suite.config("cam", **experiments.regime_changes(field, head))) for field, head in CELLS]
    )
    display(geometry.round(2))
else:
    display(Markdown("**This notebook needs the synthetic set** (part masks and knobs): skipped for " + suite.dataset))

# %% [markdown]
# ## Train every cell and score it
#
# All runs train side by side (one worker per core), each evaluated on its own test set by its worker right after
# training (label-free maps: branch B erased with the predicted class).

# %%
if SYNTHETIC:
    regime = experiments.run_regime_map(suite)

# %% [markdown]
# ## Each cell, every method
#
# Mean over seeds with its 95% t interval (within [0, 100] for percentages). `a mass head` is CAM's (branch A's) map
# share on the head, to set against the head's area share; `b mass` is branch B's share on head / body / background.
# Every per-seed value is in `table_when_erasing_helps_per_seed.csv`.

# %%
from wsol_utils.studies.analysis import paired_differences, seed_summary

CELL = ["receptive field (px)", "head (px)"]
if SYNTHETIC:
    frame = regime.frame
    VALUES = [
        "cls acc top-1",
        "GT-known loc @0.2 (papers)",
        "MaxBoxAcc (wsoleval)",
        "MaxBoxAccV2 (wsoleval)",
        "a mass head (%)",
        "head area (%)",
        "b mass head (%)",
        "b mass body (%)",
        "b mass background (%)",
        "CAM val top-1 (%)",
    ]
    summary = seed_summary(frame, [*CELL, "method"], VALUES)
    summary["converged"] = summary.merge(frame.groupby(CELL, as_index=False)["converged"].first(), on=CELL)["converged"]

# %%
if SYNTHETIC:
    note = (
        f"Exploratory. All measured by this suite on the synthetic set ({len(suite.exploratory_seeds)} seeds, each its "
        "own draw of 5,000 training and 1,000 test images; label-free maps). GT-known loc at tau 0.2: the papers' "
        "protocol; MaxBoxAcc/V2: wsoleval's. 'converged': the cell's CAM reaches 90% mean val top-1."
    )
    tables.write_table(
        summary,
        suite.figures_dir,
        "table_when_erasing_helps",
        title="The regime map: receptive field x head size, CAM / ACoL (delta 0.6) / HCLNet",
        note=note,
        digits=1,
        provenance=suite.provenance(*regime.all_runs),
    )
    tables.write_table(
        frame,
        suite.figures_dir,
        "table_when_erasing_helps_per_seed",
        title="The regime map, every seed",
        note=note,
        provenance=suite.provenance(*regime.all_runs),
    )
    display(tables.with_interval_cells(summary, digits=1))

# %%
# NBVAL_CHECK_OUTPUT
if SYNTHETIC:
    print(summary.shape, sorted(summary["method"].unique()))

# %% [markdown]
# ## Method minus CAM, per cell
#
# Paired by seed, under each protocol. Colour shows significance: a cell whose interval excludes 0 is filled and
# starred, one whose interval contains 0 is muted and hatched, a cell whose CAM did not converge is grey.

# %%
if SYNTHETIC:
    PROTOCOLS = {
        "GT-known loc @0.2 (papers' protocol)": "GT-known loc @0.2 (papers)",
        "MaxBoxAccV2 (wsoleval's protocol)": "MaxBoxAccV2 (wsoleval)",
    }
    differences = paired_differences(frame, CELL, [*PROTOCOLS.values(), "cls acc top-1"], against="cam")
    differences = differences.merge(frame.groupby(CELL, as_index=False)["converged"].first(), on=CELL)
    tables.write_table(
        differences,
        suite.figures_dir,
        "table_when_erasing_helps_differences",
        title="Exploratory: method minus CAM per cell (points; paired by seed)",
        note="Mean of the per-seed differences with its 95% t interval within [-100, 100]; 'excludes 0' marks a "
        "difference beyond the seed-to-seed noise (not corrected for multiplicity). All measured by this suite; "
        "per-seed values in table_when_erasing_helps_per_seed.csv.",
        provenance=suite.provenance(*regime.all_runs),
    )
    fig = viz.plot_regime_map(
        differences.replace({"method": {"acol": "ACoL", "hclnet": "HCLNet"}}),
        x="receptive field (px)",
        y="head (px)",
        methods=["ACoL", "HCLNet"],
        metrics=PROTOCOLS,
        converged="converged",
    )
    suite.publish(fig, "when_erasing_helps.png", provenance=suite.provenance(*regime.all_runs))
    display(Markdown(experiments.describe_regime(differences, PROTOCOLS)))

# %% [markdown]
# ## What the maps look like in each cell (seed 0, first test image)
#
# One row per cell: CAM's map, ACoL's branch B and fused map, HCLNet's fused map.

# %%
if SYNTHETIC:
    rows = experiments.regime_examples(regime, suite.exploratory_seeds[0])
    fig = viz.plot_map_grid(rows.images, rows.maps, gt_boxes=rows.gt_boxes, row_labels=rows.labels)
    suite.publish(fig, "when_erasing_helps_maps.png", provenance=suite.provenance(*regime.all_runs))
