# Each target makes its own virtual environment in .venv (override with VENV=...).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed-examples: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[examples]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[test,bench,examples,lightning]"
	touch $@

# The main job: tune a PyTorch CNN on scikit-learn's bundled digits (no download) with no pruning,
# Median, SuccessiveHalving, Hyperband and SRPPruner, compare them and write the figures to out/.
# Pass options through ARGS, e.g. make demo ARGS="--pruner srp --seed 1".
demo: $(VENV)/.installed-examples
	$(PY) examples/pytorch_digits.py $(ARGS)

test: $(VENV)/.installed-test
	$(VENV)/bin/ruff check optuna_srp tests integration_tests examples
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy optuna_srp tests
	$(PY) -m pytest -q tests integration_tests

$(VENV)/.installed-bench: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[bench]"
	touch $@

# Replays studies on recorded learning curves in CURVES (a folder of .jsonl.gz corpora). A clone
# has none: `fetch` downloads them from their publishers (names: fetch --help).
CURVES ?= ../shared/curves
bench: $(VENV)/.installed-bench
	@if ls $(CURVES)/*.jsonl.gz >/dev/null 2>&1; then \
		$(PY) -m optuna_srp.benchmark replay $(CURVES) --orderings 5 --n-trials 300; \
	else \
		echo "No recorded curves in $(CURVES)/. Download some (valid names: $(PY) -m optuna_srp.benchmark fetch --help), e.g."; \
		echo "  $(PY) -m optuna_srp.benchmark fetch accelerating_nas:lstm_ptb accelerating_nas:deep_resnets_cifar10 --out corpora"; \
		echo "  make bench CURVES=corpora"; \
	fi

clean:
	rm -rf $(VENV)
