# `make run` and `make test` do all set-up on a fresh machine (Python 3.11+, make, PyPI). `make install` and
# `make run` install the runtime only; `make test` adds the test, S3, Ray and torch extras the tests drive.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?=
TEST_EXTRAS := test,remote,cluster,train,classifier

# the shipped sample (pipeline/sample/README.md): two small Common-Crawl-style WARC files, read offline. A real dump
# file on a networked machine:  make run INPUT=https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-22/segments/1715971057216.39/warc/CC-MAIN-20240517233122-20240518023122-00000.warc.gz
INPUT ?= pipeline/sample
OUTPUT ?= out/run
MAX_RECORDS ?= 2000
WORKERS ?= 2
RUN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install system-deps run test clean

# pip is quiet (its log is thousands of lines): each step says what it does and how long it takes instead
$(BIN)/.installed: pyproject.toml
	@echo "make: creating $(VENV) and installing ccpipe's runtime into it, once: ~1.1 GB, 106 packages (trafilatura,"
	@echo "      datatrove, spaCy, presidio, fastText, DuckDB, ...), ~2 minutes from a warm pip cache, longer downloading"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.$(if $(EXTRAS),[$(EXTRAS)])'
	@# an editable install leaves ccpipe's own modules uncompiled; where PYTHONDONTWRITEBYTECODE is set nothing
	@# would ever write their .pyc, and every run (every worker, every extraction child) compiled them again
	$(BIN)/python -m compileall -q pipeline stages >/dev/null
	$(if $(findstring classifier,$(EXTRAS)),$(BIN)/pip install --quiet --force-reinstall --no-deps 'fasttext-numpy2-wheel==0.9.2')
	touch $@
	@echo "make: $(VENV) ready ($$(du -sh $(VENV) | cut -f1)); \`make run\` skips this step from now on"

$(BIN)/.installed-test: $(BIN)/.installed
	@echo "make: adding the test extras ($(TEST_EXTRAS): pytest, moto, Ray, torch) to $(VENV), once: ~2.5 GB in all"
	$(BIN)/pip install --quiet -e '.[$(TEST_EXTRAS)]'
	@# fasttext-predict and the full fastText both write `fasttext/`: the full one (a superset) must be last
	$(BIN)/pip install --quiet --force-reinstall --no-deps 'fasttext-numpy2-wheel==0.9.2'
	touch $@

install: $(BIN)/.installed

# programs some tests drive for real (headless Chromium, a one-node Slurm cluster); installed when we are
# root with apt-get, otherwise those tests skip and say why
SYSTEM_PACKAGES := chromium slurm-wlm munge
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing $$missing (apt-get)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	      || echo "warning: could not install $$missing: the tests that need them will skip"; \
	  fi; \
	else echo "not root or no apt-get: tests that need $(SYSTEM_PACKAGES) will skip"; fi

run: install
	@$(BIN)/python -m compileall -q pipeline stages >/dev/null  # up-to-date .pyc (see the install step)
	$(BIN)/ccpipe run --input $(INPUT) --output $(OUTPUT) --max-records $(MAX_RECORDS) --workers $(WORKERS) $(RUN_ARGS)

# the whole suite: ~16 minutes on 2 cores. PYTEST_ARGS picks: PYTEST_ARGS='-m "not slow"' leaves out the runs over
# the corpus (marked slow), PYTEST_ARGS=tests/pipeline/test_run.py one file, PYTEST_ARGS='-k funnel' by name
test: $(BIN)/.installed-test system-deps
	@echo "make: running the test suite (~16 minutes on 2 cores; PYTEST_ARGS='-m \"not slow\"' for the quick part)"
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache
