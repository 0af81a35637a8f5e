# wsol-repro: two commands are the contract (see README.md).
#   make reproduce   set up .venv and run the notebook suite on the built-in synthetic data set
#   make test        set up .venv, lint and type-check, and run the test suite minus the `slow` integration runs
#   make test-slow   the `slow` integration runs: the notebooks under nbval, the suite end to end on tiny real-data
#                    folders, DDP, the browser; .ci/run runs both (make test-all)
# The papers' setting on real data (docs/methods.md §4): make reproduce DATASET=cub DATA_ROOT=~/data/CUB_200_2011
# (or DATASET=wsoleval DATA_ROOT=<root with metadata/<split>/>); REPRODUCE_ARGS="--backbone resnet50 --only 02" etc.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
DATASET ?=
DATA_ROOT ?=
REPRODUCE_ARGS ?=
SITE_ARGS ?=
# two lanes of notebooks in parallel, one CPU thread each (wsol_utils.ui.reproduce.LANES): faster on 2 cores, and the
# thread count, hence the numbers, does not depend on the machine
JOBS ?= 2
# --dataset / --data-root only when set, so that a bare `make reproduce` stays the synthetic suite
REPRODUCE_DATA := $(if $(DATASET),--dataset $(DATASET)) $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

.PHONY: install reproduce reproduce-smoke notebooks lint test test-slow test-all test-fast benchmark browser site clean

$(STAMP): pyproject.toml constraints.txt setup.py wsol_utils/scoring/_component_tree.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[notebooks,test,pretrained,cam]"
	@# one OpenCV only: two OpenCV wheels overwrite each other's cv2 (grad-cam 1.5.7 asks for the headless one)
	@! $(BIN)/python -m pip show -q opencv-python 2>/dev/null || { echo "opencv-python is installed next to opencv-python-headless: pip uninstall opencv-python" >&2; exit 1; }
	$(BIN)/python -m pip check
	touch $@

install: $(STAMP)

reproduce: install
	$(BIN)/python -m wsol_utils reproduce --jobs $(JOBS) $(REPRODUCE_DATA) $(REPRODUCE_ARGS)

reproduce-smoke: install
	$(BIN)/python -m wsol_utils reproduce --smoke --jobs $(JOBS) $(REPRODUCE_DATA) $(REPRODUCE_ARGS)

# Each notebooks/NN_name.ipynb is paired with NN_name.py (jupytext percent format, notebooks/jupytext.toml):
# after editing either side, this writes the other (the newer file wins; cell ids and outputs are kept).
notebooks: install
	$(BIN)/jupytext --sync notebooks/[0-9]*.ipynb

# Lint, format check and types (config in pyproject.toml). The notebooks' jupytext sources are scripts, not a
# package, so they get their own mypy run (silent on the library, whose errors the first run reports); the glob
# may match nothing.
LINT_PATHS := wsol_utils tests benchmarks notebooks
lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(if $(wildcard notebooks/[0-9]*.py),$(BIN)/mypy --follow-imports=silent $(wildcard notebooks/[0-9]*.py))

# The whole suite is the unit tests plus the notebooks under nbval (smoke parameters, notebooks/conftest.py), split
# by the `slow` marker (pyproject.toml): `make test` runs what is not slow (a few minutes on 2 cores), `make test-slow`
# the long integration runs (the notebooks end to end, the suite on tiny real-data folders, DDP, the browser), and
# `make test-all` (what .ci/run runs) both. MARKS narrows either set (MARKS="not figures" while figures/ is being
# regenerated); a `-m` in PYTEST_ARGS would replace the split instead.
PYTEST := $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env
MARKS ?=
AND_MARKS = $(if $(MARKS), and ($(MARKS)))
test: install lint
	$(PYTEST) -m "not slow$(AND_MARKS)" $(PYTEST_ARGS)

test-slow: install
	$(PYTEST) -m "slow$(AND_MARKS)" $(PYTEST_ARGS)

test-all: test test-slow

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

# Debian's chromium for tests/test_browser.py (Playwright cannot download browsers here); without it the
# browser test is skipped with the reason. Needs root (CI) or sudo.
browser:
	command -v chromium >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# A static HTML site of the executed suite in site/ (README, the executed notebooks of outputs/, docs/methods.md),
# built offline: open site/index.html. It does not run the suite: `make reproduce` first (without it, the
# notebooks' pages say they were not executed). SITE_ARGS="--outputs outputs/smoke" shows a smoke run.
site: install
	@ls outputs/*.ipynb >/dev/null 2>&1 || echo "note: outputs/ has no executed notebooks: run 'make reproduce' first (building the site anyway, with unexecuted notebooks)"
	$(BIN)/python -m wsol_utils site $(SITE_ARGS)

benchmark: install
	$(BIN)/python benchmarks/bench_boxeval.py

clean:
	rm -rf $(VENV) outputs runs site .pytest_cache
