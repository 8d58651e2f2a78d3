# stratus — every target installs what it needs first, so `make run` and `make test`
# work from a fresh clone on a fresh Debian machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# System packages the control plane and its integration tests use (see ../shared/ENVIRONMENT.md).
# Installed without Recommends (qemu's and libvirt's bring GTK, GStreamer, audio, Xen, LXC,
# VirtualBox, swtpm, OVMF: ~170 packages stratus never loads). The recommends stratus does
# use are listed by name: qemu-utils (qemu-img), qemu-block-extra (a DataCentred install ISO
# read over HTTP is a qemu curl block device), libxml2-utils (virt-xml-validate),
# netcat-openbsd (qemu+ssh:// to older libvirt hosts), xz-utils and ca-certificates (docker).
# qemu's iPXE ROMs (virtio NICs) and SeaBIOS are hard dependencies, so they come anyway.
APT_PACKAGES := etcd-server etcd-client libvirt-dev libvirt-clients libvirt-daemon \
  libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils qemu-block-extra openvswitch-switch \
  docker.io busybox-static iproute2 git openssl xorriso lua5.1 openssh-server openssh-client \
  libxml2-utils netcat-openbsd xz-utils ca-certificates \
  prometheus python3-kubernetes slapd ldap-utils pdns-server pdns-backend-sqlite3 bind9-dnsutils
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Native addons (better-sqlite3, @unraid/libvirt) compile here: prebuilt downloads are unreachable.
export npm_config_build_from_source := true
export npm_config_audit := false
export npm_config_fund := false

DATA_DIR ?= ./data
TEST_FILES = $(shell find dist/test -name '*.test.js' | sort)

.PHONY: help deps deps-apt deps-npm build run test test-unit lint bench clean generate

help:
	@echo "make run    install what is missing, build, start stratus (standalone, SQLite, sim node)"
	@echo "make test   install what is missing, lint, run the whole suite"
	@echo "make bench  run the benchmarks (results in bench/results/)"
	@echo "make deps | deps-apt | deps-npm | build | lint | clean"

deps: deps-apt deps-npm

deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps-apt: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

deps-npm: node_modules/.stratus-installed

node_modules/.stratus-installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: deps-npm
	npx tsc -p tsconfig.json

lint: deps-npm
	npx tsc -p tsconfig.json --noEmit
	npx eslint --max-warnings 0 .

run: deps build
	bin/stratus serve --data-dir $(DATA_DIR) --sim-node

test: deps build lint
	node --test --test-concurrency=1 --test-timeout=900000 --test-reporter=spec $(TEST_FILES)

test-unit: deps-npm build
	node --test --test-reporter=spec $(shell find dist/test/unit -name '*.test.js' | sort)

bench: deps build
	node dist/bench/run.js

clean:
	rm -rf dist

.PHONY: generate
# Regenerates crds/types.ts from crds/*.yaml (a unit test fails when it is stale).
generate: deps-npm
	node --import tsx crds/generate.ts
