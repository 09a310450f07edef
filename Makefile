# The two Quick-start commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The typed core that `make lint` holds to ruff and mypy: the domain, storage, and what the bot
# imports of the runtime.
TYPED := bot storage seal_runtime/api

.PHONY: demo test lint install clean bench lock redis-server catalogs mutation mutation-changed hand-mutants

# Installs exactly what requirements.lock names (resolved once with pip-compile), so a new
# release upstream cannot break a fresh clone; torch is pinned there to the CPU 2.13.0 build.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/stickerbot demo

# The scale-out tests start their own redis-server (Debian's package) on 127.0.0.1, on a free
# port in a temporary folder, and stop it afterwards. `make demo` never needs it.
# Lint first (seconds), then the suite: CI runs `make test` (.ci/run), so it runs both.
test: lint redis-server
	$(BIN)/python -m pytest -q -rs

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
redis-server:
	@command -v redis-server >/dev/null || { \
		echo "installing redis-server from Debian's packages"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	} || { [ "$$CI" != true ] && echo "warning: no redis-server: the Redis tests will be skipped"; }

# ruff (lint + format, 120 columns: [tool.ruff] in pyproject.toml) and mypy on the typed core.
# The rest of the tree is not held to it yet (`ruff check .` lists what is left there).
lint: $(STAMP)
	$(BIN)/ruff check $(TYPED)
	$(BIN)/ruff format --check $(TYPED)
	$(BIN)/mypy $(TYPED)

# Re-resolve the dependencies after changing pyproject.toml (then commit requirements.lock). The
# lock holds the test and rembg extras, so `make test` runs the rembg tests too.
lock: $(STAMP)
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra test --extra rembg --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements.lock pyproject.toml

# The translations (bot/i18n.py): extract the marked texts into the template, merge it into every
# language's .po (new texts come in untranslated, changed ones fuzzy: the catalog test fails until
# they are translated), and compile the .mo files that ship. Babel is in the test extra.
CATALOG_KEYWORDS := -k _n:1,2 -k _p:1c,2 -k N_
catalogs: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg $(CATALOG_KEYWORDS) --no-location --sort-output --omit-header \
		-c TRANSLATORS: -o bot/locales/messages.pot .
	$(BIN)/pybabel update -i bot/locales/messages.pot -d bot/locales -D messages -w 120 --ignore-pot-creation-date
	$(BIN)/pybabel compile -d bot/locales -D messages --statistics
# Mutation testing (docs/mutation.md): each guarded module group against its own tests, the
# score table at the end; fails when a module is under 90 % killed. MUTATION_JOBS workers (2).
mutation: $(STAMP)
	nice -n 10 $(BIN)/python -m tests.mutation

# The same for the groups whose modules or tests differ from MUTATION_BASE (by default where
# this branch left main, or the last commit on main itself): what CI runs.
# MUTATION_BUDGET (minutes, CI: 12) runs only the selected groups that fit it by their measured time.
MUTATION_BASE ?= auto
MUTATION_BUDGET ?=
mutation-changed: $(STAMP)
	nice -n 10 $(BIN)/python -m tests.mutation --changed $(MUTATION_BASE) $(if $(MUTATION_BUDGET),--budget-min $(MUTATION_BUDGET))

# The hand-made bugs of issue #24, each applied to a scratch copy: a test must fail on each.
hand-mutants: $(STAMP)
	nice -n 10 $(BIN)/python -m tests.hand_mutants

bench: $(STAMP)
	$(BIN)/stickerbot bench perf --json bench/perf.json

clean:
	rm -rf $(VENV) out .pytest_cache
