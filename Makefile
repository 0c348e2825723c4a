# Hamroh: `make run` serves the web chat, console and API; `make test` runs the whole suite.
# Both start from a fresh clone: venv, dependencies, offline model, index, database.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
MODEL  := data/models/multilingual-e5-small/modules.json

.PHONY: install model index db run test lint typecheck bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

$(MODEL): $(STAMP)
	$(BIN)/hamroh model install

model: $(MODEL)

index: model
	$(BIN)/hamroh kb validate
	$(BIN)/hamroh kb build

db: install
	@if $(BIN)/hamroh db --help >/dev/null 2>&1; then $(BIN)/hamroh db upgrade; fi

run: index db
	$(BIN)/hamroh serve

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy bot knowledge_base nlu handoff storage bench

test: index lint typecheck
	$(BIN)/python -m pytest -q

bench: index
	$(BIN)/hamroh bench search

clean:
	rm -rf data/index data/models $(VENV)
