# One virtualenv, created and filled on first use; every target below depends on it.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## serve on 127.0.0.1:8000 with SQLite, demo data and a fresh demo API key
	$(VENV)/bin/signoff demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict bot storage

# The suite in parallel, one worker per core (TEST_WORKERS=1: one process); a test
# module stays on one worker, with its module-wide fixtures.
TEST_WORKERS ?= auto

test: lint
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadscope

# PostgreSQL for the benchmarks that also run there (a throwaway database is made in it)
BENCH_PG ?= postgresql://postgres@127.0.0.1:5432/postgres

$(VENV)/.bench-stamp: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(STAMP) $(VENV)/.bench-stamp
	$(PY) bench/ingest.py --postgres $(BENCH_PG)
	$(PY) bench/sweep.py
	$(PY) bench/export.py --postgres $(BENCH_PG)
	$(PY) bench/click_ack.py
	$(PY) bench/footprint.py

clean:
	rm -rf $(VENV) signoff.db signoff.db-wal signoff.db-shm
