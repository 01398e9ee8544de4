# Two commands set everything up on a fresh machine:
#   make demo   the main job on the default directory store and bundled fake servers
#   make test   venv + extras + redis-server + reference PDS + headless Chromium, then lint, types and the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The demo needs only the package itself: no extras, no dev tools (mypy, mkdocs, hypothesis).
DEMO_STAMP := $(VENV)/.demo-stamp
# The reference PDS of this checkout: installed, tested and benchmarked from here.
export PDS_TOOLS_DIR ?= $(CURDIR)/.tools/pds

.PHONY: install lint typecheck test docs demo bench system-deps redis-server reference-pds orig-hac chromium oauth-client-node clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[redis,keyring,dev,examples,bench]'
	touch $(STAMP)

install: $(STAMP)

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check -e .
	touch $(DEMO_STAMP)

lint: install
	$(BIN)/ruff check src tests benchmarks demo examples
	$(BIN)/ruff format --check src tests benchmarks demo examples

typecheck: install
	$(BIN)/mypy

redis-server:
	./scripts/install-redis.sh

reference-pds:
	bash src/sessionkeeper/testing/reference_pds/install.sh

orig-hac:
	./scripts/orig-hac-cli-venv.sh >/dev/null
	./scripts/orig-hac-venv.sh >/dev/null

chromium:
	./scripts/install-chromium.sh

oauth-client-node: reference-pds
	./scripts/oauth-client-node/install.sh

system-deps: redis-server reference-pds orig-hac chromium

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site  # no --quiet: it hides the warnings --strict counts

test: install lint typecheck system-deps docs
	$(BIN)/python -m pytest -q -p no:cacheprovider

demo: $(DEMO_STAMP)
	@for scene in demo/scene_*.py; do $(BIN)/python "$$scene" || exit 1; done

# Each benchmark prints its table and writes it (with its figures and charts) into
# docs/benchmarks/, which docs/benchmarks.md includes. `install` brings the bench extra.
bench: install redis-server reference-pds orig-hac oauth-client-node  # no browser: no benchmark drives one
	@for b in benchmarks/bench_*.py; do $(BIN)/python "$$b" || exit 1; done

clean:
	rm -rf $(VENV) site .tools .pds .mypy_cache .ruff_cache .pytest_cache
