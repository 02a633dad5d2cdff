# Two entry points from a fresh clone: `make demo` and `make test`.
# Each creates .venv when missing and installs the CPU torch wheel before the package,
# because an unpinned torch would pull several GB of CUDA packages.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.veil-installed

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

.PHONY: install demo test bench
install: $(STAMP)

demo: $(STAMP)
	$(BIN)/veil demo --out out/demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=15 tests

bench: $(STAMP)
	$(BIN)/veil bench encrypt --json results/bench/encrypt.json
