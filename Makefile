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

# The main job: tune a PyTorch CNN on scikit-learn's bundled digits with SRPPruner (no download).
# Pass options through ARGS, e.g. make demo ARGS="--pruner all".
demo: $(VENV)/.installed-examples
	$(PY) examples/pytorch_digits.py $(ARGS)

test: $(VENV)/.installed-test
	$(VENV)/bin/ruff check optuna_srp tests integration_tests examples
	$(VENV)/bin/mypy optuna_srp
	$(PY) -m pytest -q tests integration_tests

bench: $(VENV)/.installed-test
	$(PY) -m optuna_srp.benchmark replay ../shared/curves --orderings 5 --n-trials 300

clean:
	rm -rf $(VENV)
