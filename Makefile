# Two entry points: `make serve` (set up, then start Pigeon on SQLite and the simulated carrier)
# and `make test` (set up, then run every test, on SQLite and PostgreSQL). `make race` races Pigeon
# against Kannel (bench/race.py; RACE_ARGS=--quick for a smoke run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: serve test bench race setup

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

# Kannel from Debian (RUNLEVEL=1: the package's own bearerbox service is not started); the race
# generates its own kannel.conf and starts bearerbox and smsbox itself.
race: setup
	scripts/ensure-postgres
	(command -v bearerbox >/dev/null && command -v smsbox >/dev/null) || \
		(apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kannel)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) || echo "no wrk"
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/race.py $(RACE_ARGS)
