# Every target creates what it needs from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed

CONTENT ?= examples/content/tubingen.jpg
STYLE   ?= examples/style/starry_night.jpg
OUT     ?= out/tubingen_starry_night.png

.PHONY: demo test lint sweep clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[test,web,plot,ray,video]'
	touch $(STAMP)

## demo: set up and repaint a bundled photo in a bundled painting's style (512 px)
demo: $(STAMP)
	$(BIN)/painterly stylize $(CONTENT) $(STYLE) -o $(OUT) --seed 0

## sweep: the blog's alpha/beta experiment as a contact sheet
sweep: $(STAMP)
	$(BIN)/painterly sweep $(CONTENT) $(STYLE) --content-weights 1e1,1e2,1e3,1e4 \
		--style-weight 1e-2 --size 256 --seed 0 -o out/sweep.png

## test: set up and run the test suite
test: $(STAMP)
	$(BIN)/python -m pytest

## lint: ruff (lint + format) and mypy on the package
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs
	$(BIN)/mypy src/painterly

clean:
	rm -rf $(VENV) out
