# rks — the two commands: `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NPM ?= npm

.PHONY: help install build readme sdk-pack vault pebble edge-servers dev dev-ha test test-unit lint typecheck compose-lint clean bench bench-scale bench-handshake bench-fleet bench-haproxy bench-memory

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

node_modules/.installed: package.json package-lock.json
	@echo "make: installing the npm dependencies (npm ci; a minute or two the first time)" >&2
	$(NPM) ci --no-audit --no-fund
	@touch $@

install: node_modules/.installed ## install npm dependencies

build: dist/.built ## compile TypeScript to dist/ (and the node SDK package to sdk/dist/), when a source changed since the last time

# What the compiled code comes from: nothing changed, nothing compiled (make dev starts at once).
SOURCES := $(shell find src mock-callback-server -name '*.ts' 2>/dev/null) tsconfig.json tsconfig.build.json sdk/tsconfig.json
dist/.built: node_modules/.installed $(SOURCES)
	@echo "make: compiling TypeScript to dist/" >&2
	$(NPM) run --silent build
	@cd sdk && ../node_modules/.bin/tsc -p tsconfig.json
	@touch $@

sdk-pack: build ## pack the node SDK as its own package (rks-node-*.tgz: no dependencies)
	@cd sdk && npm pack --silent

vault: ## find or build the OpenBao/Vault server binary (prints its path)
	@scripts/vault-bin.sh

pebble: ## find or build Pebble, Let's Encrypt's ACME test server (prints its path)
	@scripts/pebble-bin.sh

edge-servers: ## install nginx (with its Lua module) and HAProxy when missing, for the edge tests (as root; none is started)
	@scripts/edge-servers.sh

dev: install ## run OpenBao dev + rks on https://127.0.0.1:8080, initialised (Ctrl-C stops); ACME=1 adds Pebble
	@ACME=$(ACME) MAKE="$(MAKE)" scripts/dev.sh

dev-ha: build ## a 3-node Vault Raft cluster and two rks in front of it, to try failover by hand (Ctrl-C stops)
	@scripts/dev-ha.sh

typecheck: install ## type-check sources and tests
	npx tsc -p tsconfig.json --noEmit

compose-lint: ## validate docker-compose.yml with docker-compose config
	@scripts/compose-lint.sh

lint: typecheck compose-lint ## every static check

test: build lint edge-servers ## run every test, against a real OpenBao/Vault (Pebble for ACME, the classic remote-key-server for the migration, resotolib for the trust bootstrap, nginx and HAProxy for the edges)
	@RKS_VAULT_BIN=$$(scripts/vault-bin.sh) && RKS_PEBBLE_BIN=$$(scripts/pebble-bin.sh) && RKS_CLASSIC_BIN=$$(scripts/classic-bin.sh) && RKS_RESOTOLIB_PYTHON=$$(scripts/resotolib-python.sh) && export RKS_VAULT_BIN RKS_PEBBLE_BIN RKS_CLASSIC_BIN RKS_RESOTOLIB_PYTHON && npx jest

test-unit: install ## only the tests that need no Vault
	npx jest --selectProjects unit

bench: build ## rks vs Vault on the hot paths, then bench-scale (not part of make test; SAVE=1 keeps results in bench/results)
	@RKS_VAULT_BIN=$$(scripts/vault-bin.sh) && export RKS_VAULT_BIN && SAVE=$(SAVE) npx tsx bench/run.ts
	@$(MAKE) --no-print-directory bench-scale

bench-scale: build ## SCALE (100000) pushed secrets in a group beside one of 10, then MANAGED (100000) managed ones and ACME (10000) names from Pebble, on Raft storage (hours)
	@RKS_VAULT_BIN=$$(scripts/vault-bin.sh) && export RKS_VAULT_BIN && SAVE=$(SAVE) SCALE=$(SCALE) npx tsx bench/scale.ts
	@RKS_VAULT_BIN=$$(scripts/vault-bin.sh) && RKS_PEBBLE_BIN=$$(scripts/pebble-bin.sh) && export RKS_VAULT_BIN RKS_PEBBLE_BIN && SAVE=$(SAVE) MANAGED=$(MANAGED) DUE=$(DUE) ACME=$(ACME) npx tsx bench/managed.ts

bench-fleet: build ## EDGES (200) SDK edges of a NAMES (10000) name group: what they cost rks when nothing changes, and how soon a replaced key reaches them all (SAVE=1 as for bench)
	@RKS_VAULT_BIN=$$(scripts/vault-bin.sh) && export RKS_VAULT_BIN && SAVE=$(SAVE) NAMES=$(NAMES) EDGES=$(EDGES) npx tsx bench/fleet.ts

bench-haproxy: build edge-servers ## HAProxy kept by rks edge for a group of NAMES (10000) names, TTL (120) s: time to load, key fetches, steady rate, both processes' memory (SAVE=1 as for bench)
	@RKS_VAULT_BIN=$$(scripts/vault-bin.sh) && export RKS_VAULT_BIN && SAVE=$(SAVE) NAMES=$(NAMES) TTL=$(TTL) npx tsx bench/haproxy.ts

bench-memory: build ## rks's peak memory with PUSHED (100000) and MANAGED (100000) secrets written to Vault in its layout, while it reads them all (SAVE=1 as for bench)
	@RKS_VAULT_BIN=$$(scripts/vault-bin.sh) && export RKS_VAULT_BIN && SAVE=$(SAVE) PUSHED=$(PUSHED) MANAGED=$(MANAGED) npx tsx bench/memory.ts

bench-handshake: build edge-servers ## edge handshakes per mode (rks edge, nginx, HAProxy) beside the same server with a certificate file; cold names (SAVE=1 as for bench)
	@RKS_VAULT_BIN=$$(scripts/vault-bin.sh) && export RKS_VAULT_BIN && SAVE=$(SAVE) npx tsx bench/handshake.ts

readme: build ## write into the README what is made from the code: the table of rks serve settings (src/settings.ts), the package figures
	@npx tsx scripts/readme-settings.ts
	@npx tsx scripts/readme-figures.ts

clean: ## remove build output and dev state
	rm -rf dist .dev coverage
