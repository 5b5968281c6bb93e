# Two entry points: `make serve` (set up, then start Pigeon on SQLite and the simulated carrier)
# and `make test` (set up, then run every test, on SQLite and PostgreSQL). `make race` races Pigeon
# against Kannel (bench/race.py; RACE_ARGS=--quick for a smoke run).
# Every install is pinned by constraints.txt (the lock, from pyproject.toml's ranges, with the build
# backend's own requirements): `make lock` regenerates it (LOCK_ARGS=--upgrade: the newest releases;
# LOCK_ARGS='--upgrade-package NAME': one). pip and pip-tools are pinned here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := constraints.txt
TOOLS  := $(VENV)/lock-tools
PIP    := pip==26.3
PIP_TOOLS := pip-tools==7.6.2
INSTALL := $(BIN)/pip install --quiet -c $(LOCK) --build-constraint $(LOCK)

.PHONY: serve test bench race setup lock

setup: $(VENV)/.installed

# Redone when pyproject.toml or the lock changes: pip moves every package to its pinned release.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(PIP)
	$(INSTALL) -e '.[test]'
	touch $@

lock:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet $(PIP) $(PIP_TOOLS)
	$(TOOLS)/bin/pip-compile --quiet --extra test --extra bench --build-deps-for editable --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links --output-file $(LOCK) $(LOCK_ARGS) pyproject.toml

serve: setup
	$(BIN)/pigeon serve

test: setup
	scripts/ensure-postgres
	scripts/ensure-chromium
	$(BIN)/python -m pytest -n 2 --dist loadgroup

bench: setup
	scripts/ensure-postgres
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) || echo "no wrk: the asyncio load generator alone will run"
	$(INSTALL) -e '.[bench]'
	$(BIN)/python bench/run.py --backend both --repeat 3

# Kannel from Debian (RUNLEVEL=1: the package's own bearerbox service is not started); the race
# generates its own kannel.conf and starts bearerbox and smsbox itself.
race: setup
	scripts/ensure-postgres
	(command -v bearerbox >/dev/null && command -v smsbox >/dev/null) || \
		(apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kannel)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) || echo "no wrk"
	$(INSTALL) -e '.[bench]'
	$(BIN)/python bench/race.py $(RACE_ARGS)
