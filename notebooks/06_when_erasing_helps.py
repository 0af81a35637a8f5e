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
# With a field much larger than the part, the ring of cells around the erased peak still sees the part, so B can
# keep reading it; with a field much smaller than the part, CAM may already cover the object but classify poorly.
# This notebook maps the regime: receptive field from below the part size to far above it
# (`wsol_utils.analysis.RECEPTIVE_FIELDS`) x two head sizes, for CAM, ACoL ($\delta$ = 0.6, the paper's value) and
# HCLNet, every cell trained with each of the suite's seeds. Per cell: classification accuracy, GT-known loc at the
# papers' $\tau$ = 0.2, MaxBoxAcc and MaxBoxAccV2 (wsoleval), where B's map mass goes (head / body /
# background), and CAM's head mass against the head's area share. Then "method minus CAM", paired by seed, under
# each protocol, with its 95% interval.
#
# This notebook needs the synthetic set's part masks and knobs; on CUB or ILSVRC it says so and stops.

# %%
import pandas as pd
import torch
from IPython.display import Markdown, display

from wsol_utils import tables, viz
from wsol_utils.engine import example_maps
from wsol_utils.suite import Suite

suite = Suite.from_parameters(DATASET, DATA_ROOT, EPOCHS, DEVICE, SMOKE, RUNS_DIR, FIGURES_DIR, PROGRESS)
torch.manual_seed(0)
print(f"data set: {suite.dataset}; smoke mode: {suite.smoke}; figures go to {suite.figures_dir}")

# %% [markdown]
# ## The grid and its geometry
#
# To fit the suite's CPU budget the regime map trains on 1,000 images (the main tables use 5,000), 6 epochs, without
# per-epoch validation, and is scored on the first 500 of the 1,000 test images (`limit`). Each cell's classification
# accuracy is in the table, so an undertrained cell shows; the spread over seeds, not the test-set size, dominates
# each cell's interval. The 90 runs train side by side (`suite.train_many`, one worker per core), each evaluated by
# its worker right after training. `head_geometry` reads the receptive field and stride off the model.

# %%
from wsol_utils.analysis import RECEPTIVE_FIELDS, head_area_share, head_geometry
from wsol_utils.data.synthetic import SyntheticConfig

SYNTHETIC = suite.dataset == "synthetic"
HEAD_SIZE = SyntheticConfig().head_size  # head diameter / image side (default 0.11)
HEADS = {"1x head": HEAD_SIZE, "2x head": 2 * HEAD_SIZE}
FIELDS = (8, 18) if suite.smoke else tuple(RECEPTIVE_FIELDS)
if suite.smoke:
    HEADS = {"1x head": HEAD_SIZE}
BUDGET = {} if suite.smoke else {"num_train": 1000}
SCORED = {} if suite.smoke else {"limit": 500}  # test images scored per run (evaluate's `limit`: the first N)
METHODS = {"cam": {}, "acol": {"delta": 0.6}, "hclnet": {}}
FUSION = {"cam": None, "acol": "max", "hclnet": "add"}


def cell_changes(field: int, head: float) -> dict:
    """The RunConfig changes of one cell of the grid (no per-epoch validation: the tables report test accuracy)."""
    return {"model_kwargs": RECEPTIVE_FIELDS[field], "dataset_kwargs": {"head_size": head, **BUDGET}, "val_split": None}


if SYNTHETIC:
    geometry = pd.DataFrame(
        [
            {"head": head_name, **head_geometry(suite.config("cam", **cell_changes(field, head)))}
            for head_name, head in HEADS.items()
            for field in FIELDS
        ]
    )
    display(geometry.round(2))
else:
    display(Markdown("**This notebook needs the synthetic set** (part masks and knobs): skipped for " + suite.dataset))

# %% [markdown]
# ## Train every cell, method and seed; evaluate on test

# %%
from wsol_utils.analysis import run_frame, seed_summary

results: dict = {}
cell_runs: list = []
if SYNTHETIC:
    cells = [(field, head, method) for head in HEADS.values() for field in FIELDS for method in METHODS]
    grid = suite.train_many(  # each run evaluated on test by its worker right after training
        [(method, {**METHODS[method], **cell_changes(field, head)}) for field, head, method in cells],
        evaluate=[[{"fusion": FUSION[method], **SCORED}] for _, _, method in cells],
    )
    for (field, head, method), seeds in zip(cells, grid):
        cell_runs += list(seeds.values())
        for seed, r in suite.evaluate_seeds(seeds, fusion=FUSION[method], **SCORED).items():
            results[(field, round(head * 64, 2), method, seed)] = r
    keys = ("receptive field (px)", "head (px)", "method", "seed")
    frame = run_frame(results, keys, masses=("a", "b"))
    area = {
        round(head * 64, 2): head_area_share(suite.config("cam", **cell_changes(FIELDS[0], head)), "test")
        for head in HEADS.values()
    }
    frame["head area (%)"] = frame["head (px)"].map(area)
    sizes = SyntheticConfig(**cell_changes(FIELDS[0], HEAD_SIZE)["dataset_kwargs"])
    train_images, test_images = sizes.num_train, SCORED.get("limit", sizes.num_test)
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
    ]
    regime = seed_summary(frame, ["receptive field (px)", "head (px)", "method"], VALUES)
    tables.write_table(
        regime,
        suite.figures_dir,
        "table_when_erasing_helps",
        title="The regime map: receptive field x head size, CAM / ACoL (delta 0.6) / HCLNet",
        note=f"All numbers measured by this suite on the synthetic set ({train_images:,} training images, "
        f"{test_images:,} test images): "
        f"mean and 95% t-interval (±) over {len(suite.seeds)} seeds. GT-known loc at tau 0.2 is the papers' "
        "protocol; MaxBoxAcc/V2 wsoleval's (best threshold per metric). 'a mass head' is branch A's (CAM's) map "
        "share on the head, to compare with the head's area share; 'b mass' is branch B's map share on head / "
        "body / background (two-branch methods).",
        provenance=suite.provenance(*cell_runs),
    )
    display(regime.round(1))

# %%
# NBVAL_CHECK_OUTPUT
if SYNTHETIC:
    print(regime.shape, sorted(regime["method"].unique()))

# %% [markdown]
# ## Complementary minus CAM, under each protocol
#
# Each cell: the mean over seeds of (method - CAM) with the same seed, and its 95% t half width; a star and a black
# outline mark the cells whose interval excludes 0. Red: better than CAM, blue: worse.

# %%
from wsol_utils.analysis import paired_differences

if SYNTHETIC:
    PROTOCOLS = {
        "GT-known loc @0.2 (papers' protocol)": "GT-known loc @0.2 (papers)",
        "MaxBoxAccV2 (wsoleval's protocol)": "MaxBoxAccV2 (wsoleval)",
    }
    differences = paired_differences(
        frame, ["receptive field (px)", "head (px)"], [*PROTOCOLS.values(), "cls acc top-1"], against="cam"
    )
    tables.write_table(
        differences,
        suite.figures_dir,
        "table_when_erasing_helps_differences",
        title="Complementary minus CAM per cell (points; paired by seed)",
        note=f"Mean of the per-seed differences and its 95% t half width over {len(suite.seeds)} seeds; "
        "'excludes 0' marks a difference beyond the seed-to-seed noise. All numbers measured by this suite.",
        provenance=suite.provenance(*cell_runs),
    )
    fig = viz.plot_regime_map(
        differences.replace({"method": {"acol": "ACoL", "hclnet": "HCLNet"}}),
        x="receptive field (px)",
        y="head (px)",
        methods=["ACoL", "HCLNet"],
        metrics=PROTOCOLS,
    )
    suite.publish(fig, "when_erasing_helps.png", provenance=suite.provenance(*cell_runs))

# %% [markdown]
# ## Reading


# %%
def describe_cells(rows: pd.DataFrame, column: str) -> str:
    """``RF 8 px / head 7 px (+9.1 ± 4.2), ...`` for the rows of a differences table."""
    return ", ".join(
        f"RF {viz.format_px(r['receptive field (px)'])} px / head {viz.format_px(r['head (px)'])} px "
        f"({r[column]:+.1f} ± {r[column + ' ±']:.1f})"
        for _, r in rows.iterrows()
    )


if SYNTHETIC:
    lines = []
    for protocol, column in PROTOCOLS.items():
        for method in ("acol", "hclnet"):
            part = differences[differences["method"] == method]
            better = describe_cells(part[part[f"{column} excludes 0"] & (part[column] > 0)], column)
            worse = describe_cells(part[part[f"{column} excludes 0"] & (part[column] < 0)], column)
            name = "ACoL" if method == "acol" else "HCLNet"
            lines.append(
                f"**{name} vs CAM, {protocol}**: better beyond the seed noise in {better or 'no cell'}; worse in "
                f"{worse or 'no cell'}; elsewhere no difference is shown."
            )
    display(Markdown("\n\n".join(lines)))
