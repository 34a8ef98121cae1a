# hepchain — two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NUMBA  := $(VENV)/.numba-compiled

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first: the CPU wheel; every later install is constrained to it.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# numba compiles the detector and shower kernels (cache=True) here, once per change of their
# sources, instead of in the first study or test that runs them (about 15 s)
$(NUMBA): $(STAMP) $(shell grep -rl --include='*.py' 'njit' src/hepchain)
	@echo "compiling the numba kernels"
	@d=$$(mktemp -d); $(BIN)/hepchain generate ttbar -n 20 --out $$d/ttbar >/dev/null \
	  && $(BIN)/hepchain generate ecal_fixed -n 10 --out $$d/ecal >/dev/null; s=$$?; \
	  rm -rf $$d; exit $$s
	@touch $(NUMBA)

install: $(NUMBA)

demo: $(NUMBA)
	$(BIN)/hepchain demo

test: $(NUMBA)
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) reports .pytest_cache
