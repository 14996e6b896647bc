# The two commands a newcomer needs: `make demo` and `make test`.
# Both create (or reuse) .venv and install the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench bench-10m fuzz browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/python -m pip install -q -e '.[test,plot]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ipyrecorder demo --output-dir demo-out

# Browser tests drive Debian's chromium with Playwright (no browser download):
# install it when we can (root with apt); without it they skip, except in CI.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "note: chromium is not installed; the browser tests will be skipped"

# The formatter and linter (ruff, configured in pyproject.toml) are part of the tests.
lint: $(STAMP)
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet .

format: $(STAMP)
	$(BIN)/ruff format --quiet .
	$(BIN)/ruff check --quiet --fix .

test: $(STAMP) browser lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-10m: $(STAMP)  # issue 11's table at ten million tasks (writes about 250 MB to a temporary directory)
	$(BIN)/python -m benchmarks.scale --tasks 10000000

fuzz: $(STAMP)  # the fuzz test with many more cases than CI runs
	IPYRECORDER_FUZZ_CASES=100000 $(BIN)/python -m pytest -q tests/test_fuzz.py

clean:
	rm -rf $(VENV) demo-out test-artifacts
