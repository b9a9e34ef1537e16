# The README's two commands: `make bench` (the main job) and `make test`.
# Both create .venv and install the pinned dependencies on first use only;
# the install is redone only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench test perf keep-perf profile-ab asv-quick asv-regression asv-publish training-bench gpu-check

bench: $(STAMP)  ## train, measure and tabulate every method on the embedded default
	$(BIN)/dta bench

test: $(STAMP)  ## the unit tests (pytest-benchmark checks run once as smoke tests)
	$(BIN)/python -m pytest

perf: $(STAMP)  ## pytest-benchmark CI performance checks, JSON under .benchmarks/
	$(BIN)/python -m pytest tests/perf --benchmark-enable --benchmark-json=.benchmarks/perf.json

PERF_LABEL ?= make-perf
keep-perf: $(STAMP)  ## keep the last make perf run: results/perf/<machine>/<commit>-<label>-<time>.json
	$(BIN)/python scripts/keep_perf.py --label $(PERF_LABEL)

REV ?= HEAD
profile-ab: $(STAMP)  ## profile() overhead of this tree against revision REV (default HEAD), one process
	$(BIN)/python scripts/profile_ab.py --rev $(REV)

asv-quick: $(STAMP)  ## one quick asv run of the suite in the current environment (-v: setup_cache's training progress)
	$(BIN)/asv machine --yes
	$(BIN)/asv run -v --python=same --set-commit-hash "$$(git rev-parse HEAD)" --quick --show-stderr

asv-regression: $(STAMP)  ## asv across commits in a virtualenv (pinned deps installed once; -v: training progress)
	$(BIN)/asv machine --yes
	$(BIN)/asv continuous -v main HEAD --show-stderr

asv-publish: $(STAMP)  ## the HTML dashboard under .asv/html; offline view (no CDN scripts) in .asv/html/offline
	$(BIN)/asv publish
	$(BIN)/dta history --out .asv/html/offline

training-bench: $(STAMP)  ## training throughput and the >= 90 % accuracy bar
	$(BIN)/python scripts/bench_training.py

gpu-check: $(STAMP)  ## GPU latency across T, training step, compile, asv: results/gpu/ (CPU: dry run)
	$(BIN)/python scripts/gpu_check.py

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)
