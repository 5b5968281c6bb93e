# Two entry points: `make serve` (set up, then start Pigeon on SQLite and the simulated carrier)
# and `make test` (set up, then run every test, on SQLite and PostgreSQL).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: serve test bench setup

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

serve: setup
	$(BIN)/pigeon serve

test: setup
	scripts/ensure-postgres
	$(BIN)/python -m pytest

bench: setup
	scripts/ensure-postgres
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) || echo "no wrk: the asyncio load generator alone will run"
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run.py --backend both --repeat 3
