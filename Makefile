# akm-infra — one entry point. `make help` lists every target.
# Every target installs what it needs (Debian packages as root, then the venv), so a fresh Debian 12 or
# 13 machine needs only `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
# Debian's own Python, as on a newcomer's machine (not a python3 another tool put first on PATH).
PYTHON ?= /usr/bin/python3
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
LAB_INVENTORY := inventory/lab/akm.yml
# A site the lab's policy allows (inventory/lab lab.internet.sites): the push's health check loads it.
LAB_TEARDOWN := tests/lab/test_zz_teardown.py

# Debian packages of the control node (docs/dependencies.md says why each is here).
APT_PACKAGES := python3-venv python3-dev gcc libyaml-dev git make debootstrap systemd-container iproute2 nftables \
	squid restic smbclient apt-cacher-ng openssh-client openssh-server sarg openssl procps libreoffice-writer-nogui poppler-utils \
	fonts-liberation

.PHONY: help
help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# APT_SIMULATE=1: apt only shows what it would install (a lab test proves the names on Debian 13 with it).
APT_INSTALL_FLAGS := $(if $(APT_SIMULATE),--simulate,-qq)

.PHONY: deps
deps: ## Install the Debian packages the project needs (as root; Debian 12 or 13)
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "Run as root to install: $$missing" >&2; exit 1; fi; \
		echo "apt-get install $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_INSTALL_FLAGS) --no-install-recommends $$missing; \
	fi

# setup.py and the C sources: pip install -e compiles the users' history scanner and the fast YAML reader
# in place.
$(VENV)/.installed: pyproject.toml setup.py scripts/akm/report/_squidscan.c scripts/akm/_yamlplain.c | deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the Python virtual environment with the pinned dependencies

.PHONY: lab lab-down lab-test
lab: venv ## Boot the virtual library: every lab machine, the fake internet, the package cache (root)
	akm lab up

lab-down: venv ## Stop the virtual library and remove everything it made (root)
	akm lab down

# Fresh machines first (a demo leaves them converged); the teardown test runs last, whatever failed. The
# privileged tests (network namespaces, Squid, mounts on the host) run here too, as root.
# LAB_UP=--new-image builds the image anew first, as CI does (.ci/run).
LAB_UP ?= --fresh
lab-test: venv ## Boot the lab, run the tests that need it or root, end with a full teardown (root)
	akm lab up $(LAB_UP)
	AKM_LAB_TEST=1 pytest -q --durations=30 -m "lab or privileged" tests --ignore=$(LAB_TEARDOWN); first=$$?; \
	AKM_LAB_TEST=1 pytest -q -m lab $(LAB_TEARDOWN); last=$$?; exit $$(( first ? first : last ))

.PHONY: lint
lint: venv ## yamllint, ansible-lint (production profile), ruff, secret scan, inventory and repo checks
	yamllint -s .
	ruff check .
	ruff format --check .
	# The bad-input corpora hold deliberately broken YAML that the scanner's YAML reader cannot parse.
	git ls-files -z | xargs -0 detect-secrets-hook --baseline .secrets.baseline --exclude-files '^tests/[^/]+/bad/'
	python -m akm.devtools collections argspecs
	akm inventory check
	# A grant without a valid signature of the director or a deputy, or any other policy error, fails here
	# (and so in CI); so do a rules clause whose control does not exist and a bad register of signed
	# "Tanishdim" sheets.
	akm policy check
	akm policy check -i inventory/lab
	# The scheduled duties: calendars through systemd-analyze, evidence kinds, the roles' timer defaults.
	akm duties check
	ansible-lint

.PHONY: unit
unit: venv ## Tests that need neither the lab nor root
	pytest -m "not lab and not privileged"

# AKM_LAB_TEST=1 (inherited by lint, unit and lab-test): a missing machine, tool or privilege fails a test.
.PHONY: test
test: export AKM_LAB_TEST := 1
test: lint unit lab-test ## Everything CI runs: lint, unit tests and the lab tests

.PHONY: demo
demo: venv ## Boot the virtual library, converge it, push the access policy, run a backup, write a report
	akm inventory check
	akm lab up
	akm lab demo --out out/demo
	akm lab status

.PHONY: converge
converge: venv ## Converge the lab with playbooks/site.yml (make lab first)
	ansible-playbook -i $(LAB_INVENTORY) playbooks/site.yml

# The three long molecule scenarios alone (marker molecule: backup_server, backup_client, access_policy);
# make test runs them with the rest.
.PHONY: molecule-test
molecule-test: venv ## Only the long molecule scenarios (make lab first)
	AKM_LAB_TEST=1 pytest -q -m "lab and molecule" tests

.PHONY: molecule
molecule: venv ## Every role's molecule scenario on the lab: converge, idempotence, verify (make lab first)
	@set -e; for role in roles/*/; do \
		echo "== molecule $$role"; \
		(cd $$role && AKM_MOLECULE_INVENTORY=$${AKM_MOLECULE_INVENTORY:-$(CURDIR)/$(LAB_INVENTORY)} molecule test); \
	done

.PHONY: bench
bench: venv ## Measure speed and memory against each issue's anchor (tables with ratios)
	python bench/inventory.py
	python bench/policy.py --domains 1000000
	python bench/net.py
	python bench/reports.py --lines 10000000
	python bench/backup.py
	@if [ "$$(id -u)" = 0 ]; then python bench/lab.py; else echo "bench/lab.py needs root: skipped"; fi
	@if [ "$$(id -u)" = 0 ]; then akm lab up && python bench/facts.py && python bench/converge.py \
	&& python bench/backup_releases.py; \
	else echo "bench/facts.py, bench/converge.py and bench/backup_releases.py need root and the lab: skipped"; fi

.PHONY: clean
clean: ## Remove the venv and caches (not the lab)
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache out
