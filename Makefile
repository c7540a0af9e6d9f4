# akm-infra — one entry point. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

# Debian packages the project's commands need on the control node.
APT_PACKAGES := python3-venv git make debootstrap systemd-container iproute2 nftables squid restic \
	apt-cacher-ng openssh-client sshpass sarg openssl

.PHONY: help
help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install the Debian packages the project needs (as root)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt-get install: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml requirements.yml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the Python virtual environment with pinned dependencies

.PHONY: lab lab-down lab-test
lab: deps venv ## Boot the virtual library: every lab machine, the fake internet, the package cache (root)
	$(BIN)/akm lab up

lab-down: venv ## Stop the virtual library and remove everything it made (root)
	$(BIN)/akm lab down

lab-test: deps venv ## Boot the lab and run the tests that need it, ending with a full teardown (root)
	AKM_LAB_TEST=1 $(BIN)/pytest -q -m lab tests/lab
