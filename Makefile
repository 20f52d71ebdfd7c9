# Two set-up commands: `make run` (demo on :9091) and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast mutation lint lint-imports typecheck security generate bench soak audit clean system-deps mysql-driver

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@$(MAKE) --no-print-directory mysql-driver
	touch $(STAMP)

# The mysql extra's driver compiles against libmariadb: Debian's libmariadb-dev is installed when
# missing and we are root. Without it the MariaDB tests skip (and fail under CI=true).
mysql-driver:
	@command -v mariadb_config >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends libmariadb-dev >/dev/null; } || \
	  echo "libmariadb-dev unavailable: the mysql extra cannot build"
	@$(BIN)/pip install --quiet -e '.[mysql]' || \
	  echo "the mysql extra did not install: MariaDB tests will skip (fail under CI=true)"

run: $(STAMP)
	$(BIN)/kpi-exporter run -c config/demo.yaml --simulate

# promtool, amtool, pgbouncer and chromium come from Debian's packages; installed when missing and we are root.
system-deps:
	@command -v promtool >/dev/null && command -v amtool >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null; } || \
	  echo "promtool/amtool unavailable: their tests will skip (fail under CI=true)"
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null; } || \
	  echo "pgbouncer unavailable: the PgBouncer tests will skip (fail under CI=true)"
	@command -v chromium >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  echo "chromium unavailable: the status page browser test will skip (fail under CI=true)"

lint: $(STAMP) lint-imports
	$(BIN)/ruff check exporter tests $(wildcard bench) $(wildcard tools)
	$(BIN)/ruff format --check exporter tests $(wildcard bench) $(wildcard tools)

# The import contracts (pyproject.toml's, or the file IMPORT_CONTRACTS names). lint-imports has
# no quiet mode: its report (header, every kept contract) goes to stderr whole only when a
# contract is broken or the check fails otherwise; when all are kept, its summary line alone.
lint-imports: $(STAMP)
	@report=$$($(BIN)/lint-imports --no-logo $(IMPORT_CONTRACTS) 2>&1); status=$$?; \
	  if [ $$status = 0 ]; then echo "lint-imports: $$(echo "$$report" | tail -n 1)"; \
	  else echo "$$report" >&2; fi; exit $$status

typecheck: $(STAMP)
	$(BIN)/mypy exporter

# bandit over the package; each finding is fixed or justified inline (# nosec BXXX  # why).
# B101 (assert) is skipped in pyproject: asserts only narrow types for mypy. bandit logs a
# "nosec encountered, but no failed test" warning for every node under a multi-line nosec'd
# expression and has no option to stop it; the filter drops only those lines, keeps findings
# and other warnings, and the exit code stays bandit's.
security: $(STAMP)
	@$(BIN)/bandit -q -c pyproject.toml -r exporter 2>$(VENV)/bandit.err; status=$$?; \
	  grep -v 'nosec encountered (B[0-9]*), but no failed test' $(VENV)/bandit.err >&2; exit $$status

# Every tier (tests/unit, tests/integration, tests/system) after the static checks: what CI runs.
test: $(STAMP) system-deps lint typecheck security
	$(BIN)/pytest -q -ra $(PYTEST_ARGS)

# While coding: the unit and integration tiers, no subprocesses, Prometheus or browsers, and
# without the few tests marked slow (fuzzing); `make test` runs those.
test-fast: $(STAMP)
	$(BIN)/pytest -q -ra -m 'not slow' tests/unit tests/integration $(PYTEST_ARGS)

# Mutation testing of the modules that turn rows into numbers and numbers into rules, against
# their fast unit tests (tools/mutation.py; about 10 minutes on 2 cores); not part of `make test`.
mutation: $(STAMP)
	$(BIN)/python tools/mutation.py -v $(MUTATION_ARGS)

generate: $(STAMP)
	$(BIN)/kpi-exporter generate rules -c config/demo.yaml -o rules
	$(BIN)/kpi-exporter generate runbooks -c config/demo.yaml -o runbooks
	$(BIN)/kpi-exporter generate dashboards -c config/demo.yaml -o dashboards

bench: $(STAMP)
	$(BIN)/python bench/run.py

# 500 KPIs on 1 s intervals against PostgreSQL for 10 minutes, scraped 20 times a second.
soak: $(STAMP)
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# pip-audit over the exact versions installed in .venv (pinned by `pip freeze`). It asks the
# PyPI vulnerability database over the network, so it cannot run offline. pip-audit lives in
# its own virtual environment, so it never becomes a dependency of the project.
AUDIT_VENV := $(VENV)-audit
audit: $(STAMP)
	$(BIN)/pip freeze --exclude-editable > $(VENV)/requirements.lock
	@[ -x $(AUDIT_VENV)/bin/pip-audit ] || { $(PYTHON) -m venv $(AUDIT_VENV) && \
	  $(AUDIT_VENV)/bin/pip install --quiet pip-audit; }
	$(AUDIT_VENV)/bin/pip-audit --strict --no-deps --disable-pip -r $(VENV)/requirements.lock

clean:
	rm -rf $(VENV) $(VENV)-audit state .demo
