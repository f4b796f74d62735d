# sso-proxy: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
AXE    := tests/a11y/node_modules/.installed

.PHONY: demo test check lint types bench bench-instructions mutants clean screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# axe-core for the accessibility checks (tests/e2e/test_page_tour.py), in a test-local node_modules.
$(AXE): tests/a11y/package.json tests/a11y/package-lock.json
	cd tests/a11y && npm ci --no-audit --no-fund
	touch $(AXE)

demo: $(STAMP)
	$(BIN)/sso-proxy demo

test: $(STAMP) $(AXE)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Every page, desktop and 375 px, into docs/screenshots (fails on a console error or missing Thai glyphs).
screenshots: $(STAMP) $(AXE)
	SSO_PROXY_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_page_tour.py

lint: $(STAMP)
	$(BIN)/ruff check sso_proxy tests bench mutants
	$(BIN)/ruff format --check sso_proxy

# mypy --strict over the package, the tests, bench and mutants (the files are listed in pyproject.toml).
types: $(STAMP)
	$(BIN)/mypy

check: lint types test

mutants: $(STAMP)
	$(BIN)/python mutants/run.py

bench: $(STAMP)
	$(BIN)/python -m bench.run

# Instructions per request under callgrind, access log on and off: immune to the machine's drift.
# Row C (a proxied GET), then row E (nginx's /oauth2/auth question).
bench-instructions: $(STAMP)
	$(BIN)/python -m bench.instructions
	$(BIN)/python -m bench.instructions --row E

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
