# OpenLine: `make demo` runs two stations; `make test` runs the whole suite.
# Both bootstrap what they need on a fresh Debian machine (a .venv, Python packages,
# and PostgreSQL from Debian's packages for the tests).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all demo test lint format bench bench-deps venv system-deps clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "OpenLine needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# PostgreSQL server binaries for the test suite (the suite starts its own throwaway server),
# and Chromium for the browser tests (Playwright drives Debian's build; nothing is downloaded).
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "Installing PostgreSQL from Debian's packages"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Chromium from Debian's packages"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi

demo: venv
	$(BIN)/openline demo

# One pytest worker per core and one more (at most four), each with its own PostgreSQL
# server and Chromium: the end-to-end tests spend much of their time waiting on stations,
# timers and the browser, which the extra worker fills (on 2 cores, 12.8 minutes against
# 14.2 with two). A worker that finishes early takes tests queued for another.
# `make test TEST_WORKERS=0` runs the suite in one process.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

test: venv system-deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses 4 --dist worksteal

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# PostGIS for the PostgreSQL server above, as bench/conflicts.py's baseline only (OpenLine
# itself never uses it); the package matching the server the tests start.
bench-deps: system-deps
	@major=$$(ls /usr/lib/postgresql | sort | tail -n 1); \
	if [ ! -f /usr/share/postgresql/$$major/extension/postgis.control ]; then \
		echo "Installing PostGIS from Debian's packages (benchmark baseline)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql-$$major-postgis-3 >/dev/null; \
	fi

bench: venv bench-deps
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/board_history.py
	$(BIN)/python bench/notices_page.py
	$(BIN)/python bench/notices_map.py
	$(BIN)/python bench/escalation.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/ledger_backfill.py
	$(BIN)/python bench/conflicts.py
	$(BIN)/python bench/notice_station.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis artifacts
