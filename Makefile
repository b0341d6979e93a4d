# The two README commands: `make demo` and `make test`. Both create .venv/ first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: demo demo-fraud demo-recommender test lab lint format bench clean system

# Debian packages, as package:command. bubblewrap is the grader's sandbox; postgresql
# backs the results-store tests; chromium opens the reports in browser tests.
SYSTEM_PACKAGES := bubblewrap:bwrap postgresql:pg_ctlcluster chromium:chromium

system:
	@sh tools/system-packages.sh $(SYSTEM_PACKAGES)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Both tracks, end to end (`make demo TRACK=fraud` or `TRACK=recommender` runs one).
# Fraud: train and register the champion, show what drift costs, then the live half:
# serve, replay traffic, monitor a clean and a drifted window, retrain, stop.
# Recommender: serve champion and challenger, replay three weeks of visits, A/B them on
# live revenue, monitor, decide. Each track ends by grading its reference solution on a
# hidden holdout, as an instructor would.
TRACK ?= all
demo: system $(STAMP) $(if $(filter all fraud,$(TRACK)),demo-fraud) \
	$(if $(filter all recommender,$(TRACK)),demo-recommender)
	@test -n "$(filter all fraud recommender,$(TRACK))" || \
		{ echo "TRACK must be all, fraud or recommender (got '$(TRACK)')"; exit 2; }

workspace/grading.yaml: | $(STAMP)
	$(BIN)/fullcycle grading-config --new workspace/grading.yaml

demo-fraud: system $(STAMP) workspace/grading.yaml
	$(BIN)/fullcycle run --project fraud_detection --workspace workspace --with-drift
	$(BIN)/fullcycle live --project fraud_detection --workspace workspace
	rm -rf workspace/grade-reference
	$(BIN)/fullcycle grade starter_kits/fraud_detection --project fraud_detection \
		--config workspace/grading.yaml --out workspace/grade-reference

demo-recommender: system $(STAMP) workspace/grading.yaml
	$(BIN)/fullcycle live --project recommender --workspace workspace
	rm -rf workspace/grade-recommender
	$(BIN)/fullcycle grade starter_kits/recommender --project recommender \
		--config workspace/grading.yaml --out workspace/grade-recommender

# Two passes: the tests that may share the machine on two xdist workers, then those marked
# `alone` (tests/conftest.py ALONE: latency bars, their own workers) one at a time.
test: system $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not alone"
	$(BIN)/python -m pytest -m alone

# JupyterLab on the course, offline (jupyter/: no news, no update check); nbgrader's
# menu and formgrader use nbgrader_config.py (curriculum/ is its source directory).
lab: $(STAMP)
	JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter PATH=$(CURDIR)/$(BIN):$$PATH \
		$(BIN)/jupyter lab --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root,)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/simulator.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/grading_overhead.py
	$(BIN)/python benchmarks/reference_seeds.py
	$(BIN)/python benchmarks/course.py
	@echo "fair bars, ~2 h at full scale: $(BIN)/python benchmarks/grade_seeds.py [--scale small]"

clean:
	rm -rf workspace .pytest_cache .ruff_cache
