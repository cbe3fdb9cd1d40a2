# V4V: top-level build. `make run` and `make test` do everything, setup
# included; see README.md.
SHELL := /bin/bash
ROOT := $(CURDIR)
BUILD := $(ROOT)/build
CACHE := $(BUILD)/cache
RESULTS := $(BUILD)/results
TOOLCHAIN := 1.95.0
# Which Xen the builds, boots and benchmarks use: 4.20 (Debian 13's, the
# default) or 4.17 (Debian 12's); `make test` tests both.
XEN_VERSION ?= 4.20
CARGO := cargo +$(TOOLCHAIN)
export V4V_CACHE := $(CACHE)
export V4V_XEN_VERSION := $(XEN_VERSION)

.PHONY: all setup test run bench host-test clippy fmt-check clean distclean

all: xen guest

# Idempotent: installs what is missing (apt packages, the Rust toolchain).
setup:
	@bash scripts/setup.sh

# Host tests of the engine (against the simulated hypervisor) and the ABI crate.
host-test: setup
	$(CARGO) test --workspace --exclude v4v-test-guest

clippy: setup
	$(CARGO) clippy --workspace --exclude v4v-test-guest --all-targets -- -D warnings

fmt-check:
	$(CARGO) fmt --all -- --check

include mk/xen.mk
include mk/guest.mk
include mk/v4vctl.mk
include mk/dom0.mk
include mk/scenarios.mk
include mk/flask.mk
include mk/linux.mk
include mk/bench.mk

# Every stage, each with its own count, then one summary line
# `N passed, M failed`.
test: setup
	@bash scripts/test.sh

clean:
	rm -rf $(BUILD)/xen-4.* $(BUILD)/stamps-xen-* $(BUILD)/flask-policy-* $(BUILD)/target-* $(RESULTS) target

distclean:
	rm -rf $(BUILD) target
