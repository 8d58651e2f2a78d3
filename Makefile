# stratus — every target installs what it needs first, so `make run` and `make test`
# work from a fresh clone on a fresh Debian machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Building the Debian cloud image (`make image`; providers/libvirt/image-build.ts) and, in
# tests, serving DHCP to its guests from a namespace whose veth fills in checksums (ethtool).
IMAGE_APT_PACKAGES := mmdebstrap syslinux syslinux-common mtools dosfstools fdisk e2fsprogs \
  dnsmasq-base ethtool
# The web console's browser tests (test/e2e/console.test.ts) drive Debian's Chromium through
# playwright-core: nothing is downloaded at run time.
BROWSER_APT_PACKAGES := chromium
# Elastic IPs on libvirt and Docker nodes: NAT in a stratus-owned nftables table (`nft`,
# providers/nftables/) and forgetting a moved address's open flows (`conntrack`).
NAT_APT_PACKAGES := nftables conntrack
# System packages the control plane and its integration tests use (see ../shared/ENVIRONMENT.md).
# Installed without Recommends (qemu's and libvirt's bring GTK, GStreamer, audio, Xen, LXC,
# VirtualBox, swtpm, OVMF: ~170 packages stratus never loads). The recommends stratus does
# use are listed by name: qemu-utils (qemu-img), qemu-block-extra (a DataCentred install ISO
# read over HTTP is a qemu curl block device), libxml2-utils (virt-xml-validate),
# netcat-openbsd (qemu+ssh:// to older libvirt hosts), xz-utils and ca-certificates (docker).
# qemu's iPXE ROMs (virtio NICs) and SeaBIOS are hard dependencies, so they come anyway.
# awscli and s3cmd: the S3 clients the object store's tests drive (objectstore/).
APT_PACKAGES := etcd-server etcd-client libvirt-dev libvirt-clients libvirt-daemon \
  libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils qemu-block-extra openvswitch-switch \
  docker.io busybox-static iproute2 git openssl xorriso lua5.1 openssh-server openssh-client \
  libxml2-utils netcat-openbsd xz-utils ca-certificates \
  prometheus python3-kubernetes slapd ldap-utils pdns-server pdns-backend-sqlite3 bind9-dnsutils \
  docker-registry apache2-utils awscli s3cmd \
  $(NAT_APT_PACKAGES) $(IMAGE_APT_PACKAGES) $(BROWSER_APT_PACKAGES)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Native addons (better-sqlite3, @unraid/libvirt) compile here: prebuilt downloads are unreachable.
export npm_config_build_from_source := true
export npm_config_audit := false
export npm_config_fund := false

DATA_DIR ?= ./data
# The real-guest e2e is in it too: it boots a Debian VM under TCG twice (about 7-8 minutes on a
# quiet 2-core machine) and needs `image` (built once per recipe, about 2 minutes cold).
TEST_FILES = $(shell find dist/test -name '*.test.js' | sort) dist/test/e2e/real-guest.vm.js

.PHONY: help deps deps-apt deps-npm build run test test-guest test-unit lint bench bench-guest chaos clean generate image

help:
	@echo "make run    install what is missing, build, start stratus (standalone, SQLite, sim node)"
	@echo "make test   install what is missing, lint, run the whole suite"
	@echo "make bench  run the benchmarks (results in bench/results/)"
	@echo "make chaos  inject faults under load and check invariants (report in bench/results/chaos-*.json)"
	@echo "make image  build the Debian 12 cloud image (cached by recipe hash) and print its path"
	@echo "make test-guest   boot the Debian image under qemu and check it end to end (SSH, disks, a release, ACPI stop)"
	@echo "make bench-guest  stratus create → SSH beside raw virsh define+start of the same image"
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
	node --import tsx ui/build.ts

lint: deps-npm
	npx tsc -p tsconfig.json --noEmit
	npx tsc -p ui/tsconfig.json
	npx eslint --max-warnings 0 .

run: deps build
	bin/stratus serve --data-dir $(DATA_DIR) --sim-node

test: deps build lint image
	node --test --test-concurrency=1 --test-timeout=900000 --test-reporter=spec $(TEST_FILES)

# The real-guest end-to-end test (test/e2e/real-guest.vm.ts): the Debian image booted under TCG
# on a private system libvirtd + Open vSwitch, reached over SSH from a client namespace. One VM
# through every check: cloud-init keys, user data and hostname, disks, address, VLAN tag, serial
# console, a Project released onto it over SSH, a Network VLAN change (the VM restarts onto the
# new tag: its second boot), a clean ACPI stop read from the guest's journal, delete. It passes
# end to end: 682 s here at load 8-10 (create -> GuestReady 206 s, VLAN change -> GuestReady
# 163 s); 469 s on a quiet machine (157 s and 141 s); one boot alone took 9-12 min at load ~20.
# It is also part of `make test`; this target runs it alone. `image` first: building
# the image inside the test would eat its timeout (a cold build took 116 s on a quiet machine,
# 7 min at load 15-20).
test-guest: deps build lint image
	node --test --test-concurrency=1 --test-timeout=1800000 --test-reporter=spec dist/test/e2e/real-guest.vm.js

test-unit: deps-npm build
	node --test --test-reporter=spec $(shell find dist/test/unit -name '*.test.js' | sort)

# The Debian 12 cloud image the real-guest tests boot (built once per recipe; see providers/libvirt/README.md).
image: deps build
	node dist/cli/main.js image build

bench: deps build
	node dist/bench/run.js

# The guest-boot benchmark alone (two TCG boots: stratus vs raw virsh define+start to SSH).
bench-guest: deps build image
	node dist/bench/guest-boot.js

# The chaos suite's full profile (test/chaos/): kills, stops, a full disk, etcd member loss, a
# soak (CHAOS_SOAK_SECONDS, 600 by default); CHAOS_SCENARIOS and CHAOS_SEED pick and replay.
# `make test` runs its short profile (test/chaos/chaos.test.ts).
chaos: deps build
	node dist/test/chaos/run.js

clean:
	rm -rf dist

.PHONY: generate
# Regenerates crds/types.ts from crds/*.yaml (a unit test fails when it is stale).
generate: deps-npm
	node --import tsx crds/generate.ts
