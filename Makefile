# Hamroh: `make run` serves the web chat, console and API; `make test` runs the whole suite.
# Both start from a fresh clone: venv, dependencies, offline model, index, database.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
MODEL  := data/models/multilingual-e5-small/onnx/model.onnx

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
	$(BIN)/lint-imports --no-logo

typecheck: install
	$(BIN)/mypy bot knowledge_base nlu handoff storage languages bench

test: index lint typecheck
	$(BIN)/python -m pytest -q

bench: index
	$(BIN)/hamroh bench search

# Rasa as a separate service (README, "Rasa"): its own Python 3.10 environment, cached outside the
# clone in ~/.cache/hamroh/rasa-<hash of nlu/rasa/requirements.txt>; the project is generated from
# nlu/data/nlu.yml into build/rasa/; the model is cached by the project's fingerprint. Starts Rasa
# (127.0.0.1:5005) and the action server (127.0.0.1:5055); Hamroh itself runs with `make run`.
.PHONY: rasa
rasa: index db
	$(BIN)/hamroh rasa run

clean:
	rm -rf data/index data/models $(VENV)
