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
# # 07 — Post-hoc CAMs: what torchcam and pytorch-grad-cam's maps localize
#
# ACoL and HCLNet change *training* to get better maps. Post-hoc methods leave training alone and change how the
# map is read off a trained classifier: **Grad-CAM** weights the channels of the hooked layer $S'$ by the mean
# gradient of the class score, $\alpha_k = \frac{1}{hw}\sum_{x,y} \partial y_c / \partial S'_k(x, y)$, and keeps
# $\mathrm{ReLU}(\sum_k \alpha_k S'_k)$; **Grad-CAM++** weights positive gradients per cell; **Score-CAM** weights
# each channel by the class score of the image masked with that channel's upsampled map (one forward per channel);
# **LayerCAM** weights every cell by its own positive gradient. On a GAP + linear head, Grad-CAM's weights are
# $W_{c,k}/(hw)$, so Grad-CAM is CAM with a ReLU (tests/test_cam_bridge.py checks this).
#
# The libraries (torchcam, pytorch-grad-cam) compute maps but do not score them. `wsol_utils.engine.cam_bridge` feeds
# their maps through the suite's own scoring (`score_extractor`): the same upsampling, normalization and boxes as
# every other table, under both protocols.

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
# ## The main table's runs
#
# The CAM, ACoL ($\delta$ = 0.6) and HCLNet runs of notebook 02's table, for the first five of its seeds
# (`suite.exploratory_seeds`; 2 in smoke mode: Score-CAM costs one forward pass per channel). They come from the
# shared run cache: nothing new is trained when notebook 02 ran first. Maps are label-free.

# %%
seeds = list(suite.exploratory_seeds)
runs = {
    "cam": suite.train_seeds("cam", seeds=seeds),
    "acol": suite.train_seeds("acol", delta=0.6, seeds=seeds),
    "hclnet": suite.train_seeds("hclnet", seeds=seeds),
}
run_dirs = [run for per_seed in runs.values() for run in per_seed.values()]
print(f"seeds: {seeds}")

# %% [markdown]
# ## Parity: the libraries' CAM is the suite's CAM
#
# Before comparing methods, the bridge must not change the map. On the first CAM run, torchcam's `CAM` (hooked on
# branch A's body, weights of branch A's classifier) and the suite's own CAM map, both min-max normalized, must
# agree to float precision on the first 64 test images (largest absolute difference below $10^{-4}$).

# %%
from torchcam import methods as torchcam

from wsol_utils.engine.cam_bridge import SuiteCamExtractor, TorchCamExtractor, map_difference

difference = map_difference(
    runs["cam"][seeds[0]], TorchCamExtractor(torchcam.CAM), SuiteCamExtractor(), count=64, device=suite.device
)
print(f"max |torchcam CAM - suite CAM| (normalized maps, 64 images): {difference:.2e}")
assert difference < 1e-4, "the libraries' CAM differs from the suite's: the comparison below would be unfair"

# %% [markdown]
# ## The maps side by side (first CAM run)
#
# The first CAM run (seed 0), the same test images in every column, each map upsampled and min-max normalized as
# it is scored. Post-hoc maps from torchcam unless marked `pgc` (pytorch-grad-cam). White: ground-truth box.

# %%
from pytorch_grad_cam import GradCAM as PgcGradCAM

from wsol_utils.engine.cam_bridge import GradCamExtractor, MapExtractor, extractor_maps

POSTHOC: list[MapExtractor] = [
    TorchCamExtractor(torchcam.CAM, name="CAM (torchcam)"),
    TorchCamExtractor(torchcam.GradCAM, name="Grad-CAM (torchcam)"),
    GradCamExtractor(PgcGradCAM, name="Grad-CAM (pytorch-grad-cam)"),
    TorchCamExtractor(torchcam.GradCAMpp, name="Grad-CAM++ (torchcam)"),
    TorchCamExtractor(torchcam.LayerCAM, name="LayerCAM (torchcam)"),
]
SCORECAM = TorchCamExtractor(torchcam.ScoreCAM, name="Score-CAM (torchcam)")
first = runs["cam"][seeds[0]]
examples = example_maps(first, count=5)
maps = extractor_maps(first, [SuiteCamExtractor(name="CAM (suite)"), *POSTHOC, SCORECAM], count=5, device=suite.device)
columns = {name.replace(" (torchcam)", "").replace("pytorch-grad-cam", "pgc"): m for name, m in maps.items()}
fig = viz.plot_map_grid(examples.images, columns, gt_boxes=examples.gt_boxes)
suite.publish(fig, "posthoc_cams.png", provenance=suite.provenance(first))

# %% [markdown]
# ## Scoring every map on the same images
#
# Every map is that of the ground-truth class (GT-known protocol), scored by the same code on the **first 500 test
# images** (all of them in smoke mode, which has fewer): Score-CAM needs one forward pass per channel, and every
# method gets the same images so the comparison is fair. *Own map* is the map each method was trained for: CAM's,
# ACoL's fused with max, HCLNet's fused with addition (their papers' choices). The post-hoc methods hook branch A's
# body (the features CAM pools) and take the gradient of the model's classification score; on ACoL and HCLNet that
# score sums both branches, and `CAM (torchcam)` is branch A's CAM. Score-CAM runs on the CAM runs only (its
# cost). The two Grad-CAM rows compute the same channel weights and can differ only in how the map reaches the image
# size: pytorch-grad-cam resizes its map bilinearly and rescales it itself, torchcam's feature-resolution map is
# upsampled bicubically by the suite as every other map.

# %%
from wsol_utils.engine.cam_bridge import score_extractors
from wsol_utils.studies.analysis import run_frame, seed_summary

LIMIT = 500
EXTRACTORS: dict[tuple[str, ...], list[MapExtractor]] = {
    ("cam",): [SuiteCamExtractor(name="own map"), *POSTHOC, SCORECAM],
    ("acol",): [SuiteCamExtractor(fusion="max", name="own map"), *POSTHOC],
    ("hclnet",): [SuiteCamExtractor(fusion="add", name="own map"), *POSTHOC],
}
keyed_runs = {(model, seed): run for model, per_seed in runs.items() for seed, run in per_seed.items()}
results = score_extractors(keyed_runs, EXTRACTORS, limit=LIMIT, device=suite.device)
METRICS = {
    "gt_known_loc_acc": "GT-known loc @0.2 (papers)",
    "maxboxacc": "MaxBoxAcc (wsoleval)",
    "maxboxacc_v2": "MaxBoxAccV2 (wsoleval)",
    "pxap": "PxAP (wsoleval)",
}
per_seed = run_frame(results, ("model", "seed", "maps"), METRICS).dropna(axis=1, how="all")
values = [label for label in METRICS.values() if label in per_seed.columns]
images = len(next(iter(results.values())).records)
print(f"{len(results)} scorings of {images} test images each")

# %% [markdown]
# ## The table, under both protocols
#
# Mean over the training seeds with the 95% Student-t interval, cut to [0, 100]. `@0.2 (papers)`: the box at
# $\tau$ = 0.2 of the map's max (docs/methods.md §2.1); `(wsoleval)`: the best threshold per metric (§2.2); PxAP
# where the data set has masks.

# %%
table = seed_summary(per_seed, ["model", "maps"], values)
provenance = suite.provenance(*run_dirs)
note = (
    f"All numbers measured by this suite on the first {images} test images, GT-class maps; mean over the training "
    f"seeds {seeds} [95% Student-t interval within 0-100]; label-free maps. 'own map': the method's own map (ACoL "
    "fused with max, HCLNet with add); the other rows are post-hoc maps from torchcam / pytorch-grad-cam on "
    "branch A's body of the same runs. '@0.2 (papers)': a box at tau = 0.2 of the max; '(wsoleval)': the best "
    "threshold per metric."
)
title = f"Post-hoc CAMs vs. the methods' own maps (ours; {len(seeds)} seeds)"
tables.write_table(table, suite.figures_dir, "table_posthoc_cams", title=title, note=note, provenance=provenance)
per_seed_title = "Post-hoc CAMs vs. the methods' own maps, per seed (ours)"
tables.write_table(per_seed, suite.figures_dir, "table_posthoc_cams_per_seed", title=per_seed_title, note=note)
display(tables.with_interval_cells(table, digits=1))

# %% [markdown]
# ## Reading
#
# Each post-hoc map minus the same model's own map, paired by seed (the same run read two ways), with the 95%
# t-interval of the differences (`excludes 0` says whether the interval leaves out 0). Below the table, the CAM
# runs in words; a difference is stated only when its interval excludes 0. See the tables for the levels.

# %%
from wsol_utils.studies.analysis import paired_differences, paired_readings

differences = paired_differences(per_seed, ["model"], values, against="own map", column="maps")
tables.write_table(
    differences,
    suite.figures_dir,
    "table_posthoc_cams_differences",
    title="Exploratory: post-hoc map minus the method's own map, paired by seed (ours; 95% t interval)",
    note=note,
    provenance=provenance,
)
display(tables.with_interval_cells(differences, digits=1))

READ = [
    ("GT-known loc @0.2 (papers)", "GT-known loc accuracy", "the papers' protocol (tau 0.2)"),
    ("MaxBoxAccV2 (wsoleval)", "MaxBoxAccV2", "wsoleval's protocol"),
]
cam_runs = per_seed[per_seed["model"] == "cam"]
lines = [
    paired_readings(cam_runs, (maps, "own map"), READ, column="maps", names=(maps, "CAM's own map"))
    for maps in [extractor.name for extractor in EXTRACTORS[("cam",)][1:]]
]
display(Markdown("On the CAM runs (exploratory, not corrected):\n\n" + "\n\n".join(lines)))
