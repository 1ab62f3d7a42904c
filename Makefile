# The two commands: `make run` (serve the app with demo data) and `make test` (lint + all tests).
# Only Python 3.11 and make are needed; everything else is installed here.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DB     ?= data/ccrm.duckdb
PORT   ?= 8501
CHROMIUM := /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: run test install install-test chromium lint demo-db bench clean help

help:
	@echo "make run   - install, build the demo database if missing, serve http://localhost:$(PORT)"
	@echo "make test  - install test extras and chromium, run ruff and the whole pytest suite"
	@echo "make bench - ccrm bench --scale S"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The demo company: 20,000 customers, two years, seed 42. Written to a temporary file first so an
# interrupted generation never leaves a half-made database behind.
$(DB): | $(VENV)/.installed
	mkdir -p $(dir $(DB))
	rm -f $(DB).tmp $(DB).tmp.wal
	$(BIN)/ccrm sample --customers 20000 --days 730 --seed 42 --db $(DB).tmp
	mv $(DB).tmp $(DB)

demo-db: $(DB)

run: $(VENV)/.installed $(DB)
	$(BIN)/ccrm build --db $(DB) --if-needed
	$(BIN)/ccrm app --db $(DB) --port $(PORT)

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "installing Debian chromium for the browser tests"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(VENV)/.installed-test chromium lint
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/ccrm bench --scale S

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache .ruff_cache
