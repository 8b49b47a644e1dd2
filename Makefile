# Makefile for pg_cluster (PGXS)

EXTENSION = pg_cluster
MODULE_big = pg_cluster
OBJS = \
	src/conninfo.o \
	src/durable.o \
	src/election.o \
	src/events.o \
	src/fence.o \
	src/follow.o \
	src/guc.o \
	src/handover.o \
	src/peer.o \
	src/pg_cluster.o \
	src/rejoin.o \
	src/rpc.o \
	src/shared_state.o \
	src/state_file.o \
	src/switchover.o \
	src/syncrep.o \
	src/views.o \
	src/walterm.o \
	src/worker.o
DATA = pg_cluster--1.0.sql
PGFILEDESC = "pg_cluster - high availability inside PostgreSQL"

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)

PG_CPPFLAGS = -I$(srcdir)/src -I$(libpq_srcdir)
# The tests build with WERROR=-Werror; -Wextra minus the two warnings that
# PostgreSQL's own headers and fmgr conventions trigger.
WERROR ?=
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers $(WERROR)
SHLIB_LINK = $(libpq)

# One-node SQL surface: pg_regress starts its own server with the library
# preloaded (test/regress.conf), so installcheck needs no running server.
REGRESS = setup guc views rpc switchover syncrep
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --temp-instance=./tmp_check_regress

include $(PGXS)

# Multi-node TAP tests in test/t, run against the installed extension.
.PHONY: tapcheck
tapcheck:
	rm -rf '$(CURDIR)'/tmp_check
	$(MKDIR_P) '$(CURDIR)'/tmp_check
	cd $(srcdir) && TESTDIR='$(CURDIR)' PATH="$(bindir):$$PATH" \
		PG_REGRESS='$(top_builddir)/src/test/regress/pg_regress' \
		$(PROVE) $(PG_PROVE_FLAGS) -I $(srcdir)/test/perl $(PROVE_FLAGS) $(if $(PROVE_TESTS),$(PROVE_TESTS),test/t/*.pl)

# The fault-injection suite (root; network namespaces): a seeded random
# schedule of DURATION seconds after one fault of each type.
# make faults DURATION=3600 [SEED=n]
.PHONY: faults
faults:
	perl $(srcdir)/test/faults/run.pl --duration $(or $(DURATION),120) $(if $(SEED),--seed $(SEED))

# PGXS does not track header dependencies of out-of-tree modules.
$(OBJS): src/pg_cluster.h src/worker.h

# pg_cluster_ctl, the supervisor (ctl/): PGXS builds one PROGRAM or one
# MODULE_big per Makefile, so ctl/ has its own and these targets recurse.
.PHONY: ctl-all ctl-install ctl-uninstall ctl-clean
all: ctl-all
install: ctl-install
uninstall: ctl-uninstall
clean: ctl-clean
ctl-all ctl-install ctl-uninstall ctl-clean:
	$(MAKE) -C $(srcdir)/ctl $(patsubst ctl-%,%,$@) PG_CONFIG='$(PG_CONFIG)' WERROR='$(WERROR)'

# The benchmark report: bench/report.sh runs the benchmarks of bench/ and
# writes bench/results/REPORT.md with tables and PNG plots (about 35 min).
# QUICK=1: fewer, shorter runs, into bench/results/quick/; PARTS="..." some
# parts only; REPORT_ONLY=1 the report again from the data.
.PHONY: bench
bench:
	QUICK='$(QUICK)' bash '$(srcdir)/bench/report.sh'
