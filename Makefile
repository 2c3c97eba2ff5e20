# The README's commands. Every target is safe to run again.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: install run test chaos bench bench-smoke clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/tipsplit serve --port $(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

chaos: install
	$(BIN)/python -m pytest -m slow tests/chaos $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .tipsplit build src/*.egg-info
