.PHONY: run test lint bench clean

VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml scripts/bootstrap.sh
	./scripts/bootstrap.sh
	touch $(STAMP)

## Run a real agent on the embedded defaults (SQLite file, local SmolLM2 model).
run: $(STAMP)
	cd examples && ../$(VENV)/bin/tether run calculator:agent "What is 12.5 times 8?"

## Lint, type-check and run the test suite.
test: $(STAMP) lint
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy

## Run every benchmark and refresh bench/results/.
bench: $(STAMP)
	for script in bench/*.py; do $(VENV)/bin/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .tether
