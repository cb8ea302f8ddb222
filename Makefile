# Every target sets up what it needs: a fresh clone needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test validate test-quick fuzz notebooks check-reports bench bench-start bench-fleet bench-streaming bench-memory bench-overload bench-trace bench-parallel bench-dask bench-internals lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: run the quickstart scenario, print its summary, write tables and plots to results/
run: $(STAMP)
	$(BIN)/simulator run scenarios/quickstart.yaml --out results/quickstart --plots

## test: the whole suite, validation against theory included, on all cores
test: $(STAMP)
	$(BIN)/python -m pytest -n auto -q

## validate: the theory checks at the full run lengths the reference cases state (long)
validate: $(STAMP)
	SIMULATOR_VALIDATION_SCALE=1 $(BIN)/python -m pytest -n auto -q -m slow \
	    tests/test_validation_balancing.py tests/test_validation_cache.py \
	    tests/test_validation_queues.py tests/test_validation_disciplines.py tests/test_cdn.py \
	    tests/test_validation_jackson.py tests/test_validation_batches.py

## test-quick: the suite without the slow theory-validation runs
test-quick: $(STAMP)
	$(BIN)/python -m pytest -n auto -q -m "not slow"

## fuzz: 10,000 mutated shipped scenarios, validated and run shortened: no traceback, no hang (long)
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz_scenarios --mutants 10000 --jobs 2

## notebooks: regenerate the generated notebooks, execute every notebook at full settings and
## store its outputs (the suite fails when a notebook's cells changed since; several minutes)
notebooks: $(STAMP)
	$(BIN)/python notebooks/make_notebooks.py
	$(BIN)/python notebooks/execute_notebooks.py

## check-reports: render the reports in headless Chromium (installed from Debian if missing)
check-reports: $(STAMP)
	command -v chromium >/dev/null || (apt-get install -y chromium || \
	    (apt-get update && apt-get install -y chromium))
	$(BIN)/python -m pytest -q -p no:xdist tests/test_reports.py

## bench: framework vs the fastest and the idiomatic hand-written SimPy, CPU time, after a seed agreement check
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

## bench-start: whole-process CPU of import, validate, kinds and a 1,000-request run
bench-start: $(STAMP)
	$(BIN)/python benchmarks/startup.py

## bench-fleet: CPU time per request of every balancer strategy at 8 / 64 / 512 / 4096 backends
bench-fleet: $(STAMP)
	$(BIN)/python benchmarks/fleet_size.py

## bench-streaming: peak memory of 10M streaming requests against 1M (several minutes)
bench-streaming: $(STAMP)
	$(BIN)/python benchmarks/streaming_memory.py

## bench-memory: peak bytes per request of a 10^6-request run with default metrics (requests, spans)
bench-memory: $(STAMP)
	$(BIN)/python benchmarks/table_memory.py

## bench-overload: CPU per request with priority, an adaptive limit and an autoscaler against without
bench-overload: $(STAMP)
	$(BIN)/python benchmarks/overload_controls.py

## bench-trace: peak memory of replaying a 10^6-arrival trace against a 10^5 one
bench-trace: $(STAMP)
	$(BIN)/python benchmarks/trace_memory.py

## bench-internals: CPU time per request of a service's internals against the simple model
bench-internals: $(STAMP)
	$(BIN)/python benchmarks/service_internals.py

## bench-parallel: 8 replications serially and on every core
bench-parallel: $(STAMP)
	$(BIN)/python benchmarks/parallel.py

## bench-dask: a sweep on a real Dask cluster (`dask scheduler` + 2 `dask worker`s) against serial
bench-dask: $(STAMP)
	$(BIN)/python benchmarks/dask_sweep.py

## lint: ruff, mypy and the import layers (pyproject's [tool.importlinter] contracts)
lint: $(STAMP)
	$(BIN)/ruff check simulator tests benchmarks notebooks
	$(BIN)/mypy simulator
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) results build *.egg-info
