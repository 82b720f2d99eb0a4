# Parley: `make run` serves the product, `make test` checks it. Both set up what they need.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
WEB_BUILT := src/parley/static/index.html
WEB_SOURCES := $(shell find web/src web/public web/index.html web/package.json web/package-lock.json web/vite.config.ts web/tsconfig.json -type f 2>/dev/null)
NODE_TOOLS := tests/conformance/node_modules/.installed bench/node_server/node_modules/.installed

.PHONY: run test install lint bench web system-deps system-deps-test pytest clean cluster

run: install web
	$(VENV)/bin/parley serve

# Several nodes on this machine: Redis, PostgreSQL, NODES Parley nodes and HAProxy (Ctrl-C stops all).
cluster: install web
	@scripts/system-deps test
	scripts/cluster $(NODES)

install: $(INSTALLED)

$(INSTALLED): pyproject.toml requirements.lock
	@scripts/system-deps run
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $@

web: $(WEB_BUILT)

$(WEB_BUILT): $(WEB_SOURCES)
	@scripts/system-deps run
	npm ci --prefix web --no-audit --no-fund
	npm run --prefix web build
	touch $@

%/node_modules/.installed: %/package-lock.json
	npm ci --prefix $* --no-audit --no-fund
	touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	npm run --prefix web check

test: install web $(NODE_TOOLS)
	@scripts/system-deps test
	$(MAKE) --no-print-directory lint
	scripts/loopback-only $(VENV)/bin/pytest $(PYTEST_ARGS)

bench: install web $(NODE_TOOLS)
	scripts/loopback-only $(PY) bench/chat_bench.py
	scripts/loopback-only $(PY) bench/media_bench.py
	scripts/loopback-only $(PY) bench/browser_bench.py
	scripts/loopback-only $(PY) bench/mute_bench.py

clean:
	rm -rf $(VENV) web/node_modules src/parley/static tests/conformance/node_modules bench/node_server/node_modules
