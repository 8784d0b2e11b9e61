# irontoken — one Rust core, bindings for C, Python and Node.js.
# `make demo` and `make test` work on a fresh machine with Rust, Python 3 + pip
# and Node + npm: everything else (maturin, pytest, npm packages) is installed here.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV       := .venv
VENV_ABS   := $(abspath $(VENV))
PYTHON     ?= python3
CC         ?= cc
CARGO      ?= cargo
RELEASE    := target/release
CBUILD     := target/c
CFLAGS_T   := -std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude -Itests/c
CLINK      := -L$(RELEASE) -lirontoken -lpthread -Wl,-rpath,$(abspath $(RELEASE))
VALGRIND   := $(shell command -v valgrind 2>/dev/null)

.PHONY: install test-install help build rust python node c demo test test-rust test-python test-node test-c test-docs \
        lint fmt-check clippy header-check layers docs examples dist test-dist demo-cluster services-status services-required bench bench-compare clean fuzz fuzz-tools fuzz-ci mutants

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: rust python node c ## build everything (release)

rust: ## release build of the core, the C library, the CLI and the Node addon
	$(CARGO) build --release --locked -p irontoken-c -p irontoken-cli -p irontoken-node
	@# The C library's SONAME is libirontoken.so.<major>: programs linked here find it by that name.
	ln -sf libirontoken.so $(RELEASE)/libirontoken.so.$(MAJOR)

$(VENV)/.installed: python/pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'maturin>=1.9,<2' 'pytest>=8' 'mypy>=1.18' 'pyjwt[crypto]>=2.8' 'psycopg[binary]>=3.1' \
	  'fastapi>=0.110' 'uvicorn>=0.29' 'httpx>=0.27' 'biscuit-python>=0.4' 'jsonschema>=4.18'
	touch $@

python: $(VENV)/.installed ## build the Python extension into .venv (editable)
	cd python && VIRTUAL_ENV=$(VENV_ABS) PATH=$(VENV_ABS)/bin:$$PATH maturin develop --release --locked --quiet

node/node_modules/.installed: node/package.json
	cd node && npm install --no-audit --no-fund --loglevel=error
	touch $@

# The addon's file name carries the platform, as the loader (node/binding.js) looks for it.
NODE_PLATFORM = $(shell node -p "require('./node/binding.js').platformName()")

node: rust node/node_modules/.installed ## put the Node addon next to node/index.js (node/irontoken.<platform>.node)
	rm -f node/irontoken.node
	cp $(RELEASE)/libirontoken_node.so node/irontoken.$(NODE_PLATFORM).node

c: rust ## build the C test programs against include/irontoken.h
	mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_T) tests/c/test_keys.c $(CLINK) -o $(CBUILD)/test_keys
	$(CC) $(CFLAGS_T) tests/c/test_jwt.c $(CLINK) -o $(CBUILD)/test_jwt
	$(CC) $(CFLAGS_T) tests/c/test_ratelimit.c $(CLINK) -o $(CBUILD)/test_ratelimit
	$(CC) $(CFLAGS_T) tests/c/itk_verify.c $(CLINK) -o $(CBUILD)/itk_verify
	$(CC) $(CFLAGS_T) tests/c/test_usage.c $(CLINK) -o $(CBUILD)/test_usage
	$(CC) $(CFLAGS_T) tests/c/test_capability.c $(CLINK) -o $(CBUILD)/test_capability

demo: build ## API key and JWT flows across Python, Node, C and the CLI on one SQLite file
	bash tests/demo.sh

demo-cluster: build ## two processes standing in for two hosts share PostgreSQL and Redis
	$(PYTHON) tools/services.py --require
	bash tests/demo_cluster.sh

test: build services-status test-rust test-python test-node test-c test-install test-docs examples check-deploy lint ## every suite: Rust, Python, Node, C, docs and examples, header, fmt, clippy
	@echo "make test: all suites passed"

test-rust: ## Rust unit, integration and CLI tests; the behaviour suites again on PostgreSQL when it answers
	$(CARGO) test --locked
	@if $(PYTHON) tools/services.py postgres; then \
	  echo "the key, quota, session, usage, agent and capability suites on PostgreSQL:"; \
	  IRONTOKEN_TEST_STORE=postgres $(CARGO) test --locked -p irontoken --test keys --test verify --test rotation --test validation --test usage --test quota --test reservations --test sessions --test agents --test signals --test ratelimit --test import --test capability --test replay --test refresh --test dpop --test session_hardening --test llm_limits --test alerts; \
	fi

services-status: ## one "skipped: no ... at ..." line per test service that does not answer
	@$(PYTHON) tools/services.py postgres redis || true

services-required: ## CI: PostgreSQL and Redis must answer (make test only skips them)
	$(PYTHON) tools/services.py --require

test-python: python ## pytest (the key and usage suites again on PostgreSQL when it answers), stubtest, mypy
	cd python && $(VENV_ABS)/bin/pytest -q tests
	@if $(PYTHON) tools/services.py postgres; then \
	  echo "the key and usage suites on PostgreSQL:"; \
	  cd python && IRONTOKEN_TEST_STORE=postgres $(VENV_ABS)/bin/pytest -q tests/test_keys.py tests/test_usage.py tests/test_import.py; \
	fi
	$(PYTHON) tests/vectors/ratelimit_model.py
	cd python && $(VENV_ABS)/bin/python -m mypy.stubtest irontoken._native
	$(PYTHON) tools/gen_aio_stub.py --check
	cd python && $(VENV_ABS)/bin/mypy irontoken tests

test-node: node ## node:test suite and a tsc check of index.d.ts
	cd node && node --test test/
	cd node && npx --no-install tsc --noEmit -p tsconfig.json

test-docs: python node c ## every fenced example of README.md, docs/ and the package READMEs runs (Python, JS, C, Rust, shell)
	$(PYTHON) tools/gen_docs.py --check
	$(PYTHON) tests/docs/run_readme.py README.md docs/*.md docs/guides/*.md docs/reference/*.md python/README.md node/README.md core/README.md

test-c: c ## the C test program (under valgrind when installed)
	$(if $(VALGRIND),$(VALGRIND) --quiet --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,) \
	  $(CBUILD)/test_keys tests/vectors $$(mktemp -d)
	$(if $(VALGRIND),$(VALGRIND) --quiet --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,) \
	  $(CBUILD)/test_jwt tests/vectors
	$(if $(VALGRIND),$(VALGRIND) --quiet --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,) \
	  $(CBUILD)/test_ratelimit tests/vectors $$(mktemp -d)
	$(if $(VALGRIND),$(VALGRIND) --quiet --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,) \
	  $(CBUILD)/test_usage tests/vectors $$(mktemp -d)
	$(if $(VALGRIND),$(VALGRIND) --quiet --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,) \
	  $(CBUILD)/test_capability tests/vectors $$(mktemp -d)

# C library install: PREFIX/DESTDIR as usual. The shared library is
# libirontoken.so.<version> with SONAME libirontoken.so.<major> and the two
# symlinks; the static library's Libs.private come from
# `cargo rustc -- --print native-static-libs`.
PREFIX     ?= /usr/local
DESTDIR    ?=
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR      := $(firstword $(subst ., ,$(VERSION)))

install: rust ## install the C library, header and irontoken.pc (PREFIX=/usr/local DESTDIR=)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 0755 $(RELEASE)/libirontoken.so $(DESTDIR)$(LIBDIR)/libirontoken.so.$(VERSION)
	ln -sf libirontoken.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libirontoken.so.$(MAJOR)
	ln -sf libirontoken.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libirontoken.so
	install -m 0644 $(RELEASE)/libirontoken.a $(DESTDIR)$(LIBDIR)/libirontoken.a
	install -m 0644 include/irontoken.h $(DESTDIR)$(INCLUDEDIR)/irontoken.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' \
	  bindings/c/irontoken.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/irontoken.pc

test-install: ## install into a scratch DESTDIR, then build and run a C program through pkg-config, shared and static
	bash tests/c/install_test.sh

# Portable packages: built with zig for a glibc floor of 2.17 (manylinux2014),
# so they install on RHEL 8, Debian 11, Ubuntu 20.04 and Amazon Linux 2. The
# build tools (maturin, ziglang, cargo-zigbuild, auditwheel, check-jsonschema)
# live in their own venv. tools/dist.py packs the npm, CLI and C artifacts.
DIST_TOOLS  := target/dist-tools
DIST_PATH   := $(abspath $(DIST_TOOLS))/bin:$(PATH)
DIST_TARGET := x86_64-unknown-linux-gnu
GLIBC_FLOOR := 2.17

$(DIST_TOOLS)/.installed: Makefile
	$(PYTHON) -m venv $(DIST_TOOLS)
	$(DIST_TOOLS)/bin/pip install --quiet --disable-pip-version-check 'maturin>=1.9,<2' 'ziglang>=0.13' \
	  'cargo-zigbuild>=0.19' 'auditwheel>=6' 'check-jsonschema>=0.29'
	touch $@

dist: $(DIST_TOOLS)/.installed ## into dist/: manylinux2014 wheel + sdist, npm main + linux-x64-gnu packages, CLI and C tarballs
	rm -rf dist && mkdir dist
	cd python && PATH=$(DIST_PATH) maturin build --release --locked --zig --compatibility manylinux2014 --out ../dist
	cd python && PATH=$(DIST_PATH) maturin sdist --out ../dist
	PATH=$(DIST_PATH) cargo zigbuild --release --locked --target $(DIST_TARGET).$(GLIBC_FLOOR) \
	  -p irontoken-node -p irontoken-c -p irontoken-cli
	$(PYTHON) tools/dist.py --target $(DIST_TARGET) --build-dir target/$(DIST_TARGET)/release
	@ls -l dist

test-dist: dist ## every artifact of dist/ installed outside the repository without cargo, then run (tests/dist/run.sh)
	GLIBC_FLOOR=$(GLIBC_FLOOR) bash tests/dist/run.sh

EXAMPLES_PREFIX := $(abspath target/examples-install)

examples: build ## run every program of examples/ against this checkout (FastAPI, Express TS, Fastify, C, Rust, CLI)
	$(VENV)/bin/python examples/fastapi-service/check.py
	cd examples/express-ts && npm install --no-audit --no-fund --loglevel=error && npm run --silent check
	cd examples/fastify-service && npm install --no-audit --no-fund --loglevel=error && node check.js
	rm -rf $(EXAMPLES_PREFIX)
	$(MAKE) --no-print-directory install PREFIX=$(EXAMPLES_PREFIX) > /dev/null
	cd examples/c-program && PKG_CONFIG_PATH=$(EXAMPLES_PREFIX)/lib/pkgconfig $(MAKE) --no-print-directory -B run clean
	CARGO_TARGET_DIR=$(abspath target/docs-examples) $(CARGO) run --locked --quiet --manifest-path examples/rust-program/Cargo.toml
	d=$$(mktemp -d) && cd $$d && PATH=$(abspath $(RELEASE)):$$PATH IRONTOKEN_DB=$$d/ops.db bash $(abspath examples/cli-operator/ops.sh) > ops.log \
	  && tail -1 ops.log && cd / && rm -rf $$d

$(VENV)/.docs-installed: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'mkdocs-material>=9.5,<10'
	touch $@

docs: $(VENV)/.docs-installed node/node_modules/.installed ## the docs site into target/site, strict: generated reference, TypeDoc, rustdoc
	$(PYTHON) tools/gen_docs.py
	rm -rf docs/api && mkdir -p docs/api
	cd node && npx typedoc --entryPoints index.d.ts --entryPoints adapters.d.ts --entryPoints express.d.ts \
	  --entryPoints fastify.d.ts --tsconfig tsconfig.json --readme none --name "irontoken for Node.js" \
	  --disableSources --treatWarningsAsErrors --logLevel Warn --out ../docs/api/node
	RUSTDOCFLAGS="-D missing_docs -D rustdoc::broken_intra_doc_links" $(CARGO) doc --locked --no-deps -p irontoken
	cp -r target/doc docs/api/rust
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict 2>&1 | { grep -v "^INFO" || true; }; test $${PIPESTATUS[0]} -eq 0
	@echo "docs: target/site/index.html"

lint: fmt-check clippy header-check layers ## formatting, clippy -D warnings, header freshness, one-way imports in core

layers: ## core's modules import only their own layer or below (tools/layers.py)
	python3 tools/layers.py

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

header-check: rust ## include/irontoken.h must match what cbindgen generates
	@git diff --exit-code -- include/ || { echo "include/irontoken.h is stale: commit the regenerated header"; exit 1; }
	@test -z "$$(git status --porcelain -- include/)" || { echo "include/ has uncommitted files"; exit 1; }

check-deploy: python ## deploy/: the Grafana dashboard against its schema, its queries and the Prometheus rules through promtool, every metric named exported
	cd python && $(VENV_ABS)/bin/python ../tools/check_deploy.py

bench: ## criterion benchmarks of the core: keys, jwt, ratelimit (results in BENCHMARKS.md)
	$(CARGO) bench -p irontoken

# better-sqlite3 for the Node side of the key sweep, built once (a native
# module: node-gyp against the machine's Node headers).
target/bench-node/node_modules/better-sqlite3/package.json target/bench-node/node_modules/pg/package.json &:
	mkdir -p target/bench-node
	cd target/bench-node && { test -f package.json || npm init -y >/dev/null; } && \
	  npm install --no-audit --no-fund --loglevel=error better-sqlite3 pg $(if $(wildcard /usr/include/node/node.h),--nodedir=/usr,)

bench-compare: build target/bench-node/node_modules/better-sqlite3/package.json target/bench-node/node_modules/pg/package.json ## Python and Node side by side with bcrypt, PyJWT, jose, fast-jwt, limits, rate-limiter-flexible; key sweep 10k-1M
	$(VENV)/bin/pip install --quiet --disable-pip-version-check bcrypt 'limits[redis]' redis
	$(VENV)/bin/python bench/keys_python.py
	$(VENV)/bin/python bench/keys_sweep_python.py
	node bench/keys_sweep_node.js
	$(VENV)/bin/python bench/memory_sweep.py
	$(VENV)/bin/python bench/ratelimit_python.py
	node bench/ratelimit_node.js
	node bench/memory_node.js
	node bench/keys_node.js
	$(VENV)/bin/python bench/jwt_python.py
	$(VENV)/bin/python bench/capability_python.py
	$(VENV)/bin/python bench/dpop_python.py
	$(VENV)/bin/python bench/llm_python.py
	$(VENV)/bin/python bench/usage_python.py
	$(VENV)/bin/python bench/quota_processes_python.py
	$(VENV)/bin/python bench/quota_sqlite_python.py
	$(VENV)/bin/python bench/bulk_python.py
	node bench/jwt_node.js
	node bench/judge_node.js
	$(VENV)/bin/python bench/remote_jwks_python.py
	node bench/remote_jwks_node.js
	@if $(PYTHON) tools/services.py postgres redis; then $(VENV)/bin/python bench/cluster_python.py && $(VENV)/bin/python bench/pg_quota_python.py && node bench/pg_quota_node.js && node bench/cluster_node.js; fi

clean: ## remove build outputs
	$(CARGO) clean
	rm -rf $(VENV) dist node/node_modules node/*.node python/irontoken/*.so .demo

FUZZ_TARGETS := api_key jwt_verify jwt_unverified key_material options_json ratelimit capability dpop
FUZZ_SECONDS ?= 60

fuzz-tools:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked --version 0.13.2
	@rustup toolchain list | grep -q nightly || { echo "make fuzz needs a nightly toolchain (rustup toolchain install nightly)"; exit 1; }

fuzz: fuzz-tools ## run every cargo-fuzz target for FUZZ_SECONDS each (default 60); committed corpora seed them
	cd fuzz && cargo +nightly fuzz build -O
	@for t in $(FUZZ_TARGETS); do \
	  work=$$(mktemp -d); \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  (cd fuzz && cargo +nightly fuzz run -O $$t $$work corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1) \
	    | grep -E "^(Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY)|panicked|ERROR" || true; \
	  test ! -d fuzz/artifacts/$$t || test -z "$$(ls -A fuzz/artifacts/$$t 2>/dev/null)" || { echo "fuzz $$t found a crash: fuzz/artifacts/$$t"; exit 1; }; \
	  rm -rf $$work; \
	done

fuzz-ci: ## every fuzz target briefly (30 s each), as CI runs them
	$(MAKE) fuzz FUZZ_SECONDS=30

# The security-relevant modules of core, where the layering put them: key
# verify and status (keys/, model/keys.rs), JWT policy and key fit (jwt/),
# quota arithmetic (usage/quota.rs, model/quota.rs), usage idempotency
# (usage/mod.rs), audit (model/audit.rs), master key and buffered writes
# (manager.rs). One shard of their mutants per run (all of them take hours on
# 2 cores). Not in CI.
MUTANTS_FILES := core/src/jwt/keys.rs core/src/jwt/material.rs core/src/jwt/verify.rs \
  core/src/jwt/managed.rs core/src/keys/mod.rs core/src/keys/format.rs core/src/keys/import.rs \
  core/src/model/keys.rs core/src/model/quota.rs core/src/model/audit.rs core/src/usage/quota.rs \
  core/src/usage/mod.rs core/src/manager.rs
MUTANTS_SHARD ?= 0/16

mutants: ## cargo-mutants over key verify/status, JWT policy and key fit, quotas, usage idempotency, audit, master key (MUTANTS_SHARD=k/n)
	@command -v cargo-mutants >/dev/null || $(CARGO) install cargo-mutants --locked
	$(CARGO) mutants -p irontoken $(addprefix --file ,$(MUTANTS_FILES)) --shard $(MUTANTS_SHARD) \
	  --timeout 300 --output target/mutants --no-shuffle
