# The two commands a newcomer needs: `make demo` and `make test`.
# Both create (or reuse) .venv and install the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench bench-10m fuzz system-packages clean

# pip's own output goes to $(VENV)/install.log, shown only when the install fails.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --upgrade pip > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }

$(STAMP): $(BIN)/python pyproject.toml setup.py
	@echo "installing ipyrecorder with its test and plot extras into $(VENV) (pip's log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install -e '.[test,plot]' >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ipyrecorder demo --output-dir demo-out

# Browser tests drive Debian's chromium with Playwright (no browser download), and the
# clock tests shift engines' clocks with Debian's faketime: install them when we can
# (root with apt); without them those tests skip, except in CI.
system-packages:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	command -v faketime >/dev/null 2>&1 || missing="$$missing faketime"; \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
		|| echo "note: $$missing not installed; the tests that need them will be skipped"

# The formatter and linter (ruff, configured in pyproject.toml) are part of the tests.
lint: $(STAMP)
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet .

format: $(STAMP)
	$(BIN)/ruff format --quiet .
	$(BIN)/ruff check --quiet --fix .

test: $(STAMP) system-packages lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-10m: $(STAMP)  # issue 11's table at ten million tasks (writes about 250 MB to a temporary directory)
	$(BIN)/python -m benchmarks.scale --tasks 10000000

fuzz: $(STAMP)  # the fuzz test with many more cases than CI runs
	IPYRECORDER_FUZZ_CASES=100000 $(BIN)/python -m pytest -q tests/test_fuzz.py

clean:
	rm -rf $(VENV) demo-out test-artifacts
