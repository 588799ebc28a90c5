# `make run` and `make test` do all set-up on a fresh machine (Python 3.11+, make, PyPI).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# a real Common Crawl WARC (CC-MAIN-2024-22, ~1 GB), streamed: only the first MAX_RECORDS records are read
INPUT ?= https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-22/segments/1715971057216.39/warc/CC-MAIN-20240517233122-20240518023122-00000.warc.gz
OUTPUT ?= out/run
MAX_RECORDS ?= 2000
WORKERS ?= 2
RUN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install run test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,remote]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/ccpipe run --input $(INPUT) --output $(OUTPUT) --max-records $(MAX_RECORDS) --workers $(WORKERS) $(RUN_ARGS)

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache
