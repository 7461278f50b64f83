# sales_kafka — PGXS build.
#
#   make && make install      build and install the extension (needs pg_config)
#   make test                 the whole suite, self-contained (see README)
#   make bench                the quick benchmarks, self-contained (~10 min); fails
#                             when one misses its target (BENCH_RELAX=1 reports
#                             without failing; see bench/lib.sh)
#   make bench-memory         a pipeline worker's memory over 10 minutes
#   make bench-kpi            the KPI layer at 1 M and 10 M order lines (~15 min),
#                             then bench-kpi-freshness and bench-dashboard
#   make bench-kpi-freshness  KPI freshness with the rollup worker (~25 min)
#   make bench-retention      dropping a month of a partitioned model: O(1) (~3 min)
#   make bench-dashboard      the dashboard program at 1 M and 10 M lines (~20 min)
#   make fuzz                 fuzz the payload decoders (FUZZ_SECONDS per target, ~3 min)
#   make installcheck         pg_regress + TAP against an already-running server
#   make check-assert         the suite against PostgreSQL built with assertions
#                             (test/check-assert.sh; first run builds it, ~15 min)
#   make check-assert-valgrind  the pg_regress suite under valgrind, same build
#   make check-assert-discard-caches  the pg_regress suite, debug_discard_caches=1

EXTENSION = sales_kafka
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = sales_kafka
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))

# The scripts.  A released version's are files here, never edited
# (sales_kafka--1.0.sql, then sales_kafka--1.0--1.1.sql, ...).  Those of
# the version under development, its complete install script and the
# update from the version before, are built from src/sql, one concern per
# file: each object has one home there, which both scripts that make it
# include (the KPI functions and the sales model's DDL are re-created by
# the update as the install script creates them); the rest of the install
# script restates what the released scripts and the update built up, in
# the shape it now has (sql/upgrade.sql checks that both ways make the
# same objects).  When the version is released, its two built scripts are
# committed here as they are, and src/sql goes on to the next one.
UPDATE_FROM = 1.2
# (tables.sql first: it turns check_function_bodies on for the model's DDL)
MODEL_SQL = $(addprefix src/sql/model/,tables.sql rollups.sql views.sql \
	comments.sql grants.sql create.sql upgrade.sql metrics.sql)
INSTALL_SQL = src/sql/extension_schema.sql src/sql/fdw.sql src/sql/load.sql \
	src/sql/pipeline.sql src/sql/replay.sql src/sql/kpi.sql src/sql/export.sql \
	$(MODEL_SQL) src/sql/retention.sql
UPDATE_SQL = src/sql/extension_schema.sql \
	src/sql/update--$(UPDATE_FROM)--$(EXTVERSION).sql \
	src/sql/load.sql src/sql/replay.sql src/sql/kpi.sql src/sql/export.sql \
	$(MODEL_SQL) src/sql/retention.sql
DATA_built = $(EXTENSION)--$(EXTVERSION).sql \
	$(EXTENSION)--$(UPDATE_FROM)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard $(EXTENSION)--*.sql))

REGRESS = fdw_options kafka_functions decode producer_formats fdw_explain insert_select upgrade extension_schema reader_role
REGRESS_OPTS = --inputdir=.
TAP_TESTS = 1

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = -lrdkafka

# Programs that are not part of the extension: the test broker, and the
# dashboard (dashboard/Makefile: a program of its own, installed into
# PostgreSQL's bindir with its page in SHAREDIR/sales_kafka_dashboard).
TEST_BROKER = test/kafka/sk_test_broker
EXTRA_CLEAN = $(TEST_BROKER) test/fuzz/build dashboard/sales_kafka_dashboard

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

all: $(TEST_BROKER) dashboard

.PHONY: dashboard install-dashboard uninstall-dashboard
dashboard:
	$(MAKE) -C dashboard PG_CONFIG=$(PG_CONFIG)

install: install-dashboard
install-dashboard: dashboard
	$(MAKE) -C dashboard install PG_CONFIG=$(PG_CONFIG)

uninstall: uninstall-dashboard
uninstall-dashboard:
	$(MAKE) -C dashboard uninstall PG_CONFIG=$(PG_CONFIG)

# PGXS tracks no header dependencies: every module includes the shared header
$(OBJS): src/sales_kafka.h src/compat.h

# $(call sql_script,command): the script $@, made of the files $^ after a
# line that refuses to run in psql and names the command that runs it
define sql_script
	{ printf '%s\n' '/* $@: built by make from the files of src/sql whose banners follow */' \
		'' '-- complain if script is sourced in psql, rather than via $(1)' \
		'\echo Use "$(1)" to load this file. \quit'; \
	  for f in $^; do echo; cat "$$f"; done; } > $@.tmp
	mv $@.tmp $@
endef

$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_SQL)
	$(call sql_script,CREATE EXTENSION $(EXTENSION))

$(EXTENSION)--$(UPDATE_FROM)--$(EXTVERSION).sql: $(UPDATE_SQL)
	$(call sql_script,ALTER EXTENSION $(EXTENSION) UPDATE TO '\''$(EXTVERSION)'\'')

$(TEST_BROKER): test/kafka/sk_test_broker.c
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lrdkafka -lpthread

.PHONY: test bench bench-memory bench-kpi bench-kpi-freshness bench-retention bench-dashboard
test:
	./test/run-tests.sh

# The suite against a PostgreSQL 15 built with --enable-cassert, from Debian's
# source package, cached in SK_ASSERT_DIR (see test/check-assert.sh). Catches
# use of freed memory and failed assertions that a production build hides.
# Not part of CI.
.PHONY: check-assert check-assert-valgrind check-assert-discard-caches
check-assert:
	./test/check-assert.sh

check-assert-valgrind:
	./test/check-assert.sh --valgrind

check-assert-discard-caches:
	./test/check-assert.sh --discard-caches

# Benchmarks: each sets up like the tests, then runs the benchmark instead,
# and exits non-zero when it misses a target it states (bench/lib.sh:
# BENCH_RELAX=1 reports a miss without failing, BENCH_TARGET_FACTOR relaxes
# the targets).  Settings (see each script) reach them through the
# environment (every BENCH_* variable), the ones below also as arguments.
BENCH_QUICK = bench/fdw_ingest.sh bench/pipeline_ingest.sh bench/pipeline_latency.sh \
	bench/metrics_ingest.sh
BENCH_ARGS = $(foreach v,BENCH_RATE BENCH_RATES BENCH_SECONDS BENCH_SAMPLE BENCH_WARMUP \
	BENCH_TIMEOUT BENCH_FETCH_WAIT_MS,$(if $($(v)),$(v)=$($(v))))
bench:
	@rc=0; for b in $(BENCH_QUICK); do \
		./test/run-tests.sh --run $$b $(BENCH_ARGS) || rc=1; \
	done; exit $$rc

# 10 minutes (BENCH_SECONDS): the harness's time limit grows to match
bench-memory:
	SK_SUITE_TIMEOUT=$${SK_SUITE_TIMEOUT:-$$(( $(or $(BENCH_SECONDS),600) + 600 ))} \
		./test/run-tests.sh --run bench/pipeline_memory.sh $(BENCH_ARGS)

# ~15 minutes at the default sizes (BENCH_SIZES, through the environment like
# every BENCH_* setting): the harness's time limit grows to an hour
bench-kpi:
	SK_SUITE_TIMEOUT=$${SK_SUITE_TIMEOUT:-3600} \
		./test/run-tests.sh --run bench/kpi_dashboard.sh $(BENCH_ARGS)
	$(MAKE) bench-kpi-freshness
	$(MAKE) bench-dashboard

# KPI freshness with the rollup worker: 10 minutes at each of two rates
# (BENCH_SECONDS), then the ingest with the worker off and on (~25 minutes)
bench-kpi-freshness:
	SK_SUITE_TIMEOUT=$${SK_SUITE_TIMEOUT:-3600} \
		./test/run-tests.sh --run bench/kpi_freshness.sh $(BENCH_ARGS)

# Retention of a partitioned sales model: drop_old_partitions on a month of
# 100,000 and of 1,000,000 order lines, against DELETE (~3 minutes; no Kafka)
bench-retention:
	./test/run-tests.sh --run bench/retention.sh $(BENCH_ARGS)

# sales_kafka_dashboard at 1 M and 10 M order lines (~20 minutes): a full
# refresh's time and the program's memory over 10,000 refreshes
bench-dashboard:
	SK_SUITE_TIMEOUT=$${SK_SUITE_TIMEOUT:-3600} \
		./test/run-tests.sh --run bench/dashboard.sh $(BENCH_ARGS)

# Fuzzing the payload decoders (test/fuzz/README.md): not part of `make test`
# or CI.  `make fuzz` builds the libFuzzer targets and runs each for
# FUZZ_SECONDS (default 60), exiting non-zero with the input's path when one
# fails; `make fuzz-build` only builds them.
.PHONY: fuzz fuzz-build
fuzz:
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) ./test/fuzz/run.sh

fuzz-build:
	./test/fuzz/run.sh --build

# The demo (the main job): set up like the tests, then ingest synthetic sales
# through a pipeline and print live figures until Ctrl-C; DEMO_SECONDS=N
# stops it after N seconds.  run-tests.sh hands no variable of ours to the
# command, so DEMO_SECONDS goes as an argument; its per-step time limit
# (SK_SUITE_TIMEOUT) is a day here unless set.
.PHONY: demo
demo:
	SK_SUITE_TIMEOUT=$${SK_SUITE_TIMEOUT:-86400} ./test/run-tests.sh --run demo/sales_demo.sh $(DEMO_SECONDS)
