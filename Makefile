# The README's commands. Every target is safe to run again.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: install install-test run test chaos bench bench-smoke clean

# The service alone (what `make run` needs); the tests add their own tools (pytest, Playwright, linters).
install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

install-test: $(TEST_STAMP)

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

run: install
	$(BIN)/tipsplit serve --port $(PORT)

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

chaos: install-test
	$(BIN)/python -m pytest -m slow tests/chaos $(PYTEST_ARGS)

# Benchmarks (bench/README.md): full writes bench/results/<date>.{json,png,md} and the README table;
# smoke (CI, < 2 min) writes to $(BENCH_SMOKE_OUT) so the work tree stays clean.
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_SMOKE_OUT ?= $(or $(TMPDIR),/tmp)/tipsplit-bench

$(BENCH_STAMP): pyproject.toml $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --form full --update-readme $(BENCH_ARGS)

bench-smoke: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --form smoke --out $(BENCH_SMOKE_OUT) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .tipsplit build src/*.egg-info
