# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# redplane: one entry point.  `make help` lists the targets.

OUTPUT ?= build
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
CFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	    -Wno-missing-field-initializers
ALL_CFLAGS := -std=gnu11 $(WARNINGS) $(CFLAGS)
ALL_CPPFLAGS := -Iinclude -I$(OUTPUT)/include -D_GNU_SOURCE -MMD -MP $(CPPFLAGS)
LDLIBS := -lpthread
BPF_LDLIBS := -lxdp -lbpf -lelf -lz

# BPF: uapi headers (asm/types.h lives under the multiarch directory)
ARCH_DIR := $(shell $(CC) -print-multiarch 2>/dev/null || echo $$(uname -m)-linux-gnu)
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -Wall -Iinclude -Ibpf -I/usr/include/$(ARCH_DIR)
BPF_HDRS := $(wildcard bpf/*.h) $(wildcard include/redplane/*.h)

# SANITIZE=1: userspace built by clang with ASan and UBSan, every report
# fatal (make test builds rp-store and rp-load so into $(OUTPUT)/san)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ifeq ($(SANITIZE),1)
CC := $(CLANG)
ALL_CFLAGS += $(SAN_FLAGS)
endif

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-9s %s\n' "$(1)" "$(2)";
endif

LIB_SRCS := lib/addr.c lib/codec.c lib/log.c lib/parse.c lib/steer.c lib/timeout.c
STORE_LIB_SRCS := store/chain.c store/flow_table.c store/lease.c store/session.c store/shard.c \
		  store/stats.c
STORE_SRCS := $(STORE_LIB_SRCS) store/coord.c store/main.c

LOAD_SRCS := user/rp-load.c user/heartbeat.c user/hb_msg.c user/retransmit.c user/status.c \
	     user/snapshot.c user/apps.c user/app_nat.c user/app_fw.c user/app_lb.c \
	     user/app_counter.c user/app_sketch.c user/expiry.c
TEST_SRCS := $(wildcard selftests/*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(OUTPUT)/%.o)
STORE_LIB_OBJS := $(STORE_LIB_SRCS:%.c=$(OUTPUT)/%.o)
TEST_OBJS := $(TEST_SRCS:%.c=$(OUTPUT)/%.o)

LOAD_OBJS := $(LOAD_SRCS:%.c=$(OUTPUT)/%.o)

RP_STORE := $(OUTPUT)/rp-store
RP_LOAD := $(OUTPUT)/rp-load
XDP_BENCH := $(OUTPUT)/xdp-bench
RP_DEMO := $(OUTPUT)/rp-demo
TOPO_OBJS := $(OUTPUT)/user/topo.o $(OUTPUT)/user/stream.o
NAT_BENCH := $(OUTPUT)/nat-bench
CHURN_BENCH := $(OUTPUT)/churn-bench
MODE_BENCH := $(OUTPUT)/mode-bench
FWD_BENCH := $(OUTPUT)/fwd-bench
MAP_BENCH := $(OUTPUT)/map-bench
RP_BENCH := $(OUTPUT)/rp-bench
RP_ECHO := $(OUTPUT)/rp-echo
SELFTESTS := $(OUTPUT)/selftests/rp-selftests
SOAK := $(OUTPUT)/selftests/rp-soak
LIBREDPLANE := $(OUTPUT)/libredplane.a

# make test's second pass: the suites that start rp-store or rp-load, against
# builds with ASan and UBSan; a report fails the test (selftests/rp_test.c)
SAN_OUTPUT := $(OUTPUT)/san
SAN_SUITES := @(store*|load*|failover|fw_failover|lb_failover|bounded_failover|mac_store|mac_failover|chain*)/*
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
	   UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# libFuzzer targets (fuzz/fuzz_NAME.c), on the code they test built the same way
FUZZ_TARGETS ?= codec store chain agent
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 5
CHURN_CONNS ?= 1000000
FUZZ_CFLAGS := -std=gnu11 -g -O1 $(WARNINGS) -fsanitize=address,undefined \
	       -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_COV := -fsanitize=fuzzer-no-link
FUZZ_SRCS := $(LIB_SRCS) $(STORE_LIB_SRCS) user/hb_msg.c
FUZZ_OBJS := $(FUZZ_SRCS:%.c=$(OUTPUT)/fuzz/obj/%.o)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(OUTPUT)/fuzz/fuzz-%)

.DEFAULT_GOAL := all
.PHONY: all test bench demo vmtest p4 verify soak takeover churn help clean deps fuzz fuzz-corpus

## all: build rp-store, rp-load and its BPF programs, the benchmark tools, the selftests
all: $(RP_STORE) $(RP_LOAD) $(RP_DEMO) $(RP_BENCH) $(RP_ECHO) $(XDP_BENCH) $(NAT_BENCH) $(CHURN_BENCH) $(MODE_BENCH) $(SELFTESTS) $(SOAK) \
     $(OUTPUT)/bpf/veth_peer.bpf.o $(FWD_BENCH) $(MAP_BENCH)

## deps: install build and test dependencies (Debian packages; needs root)
deps:
	$(Q)scripts/deps.sh

## demo: (root) a TCP connection through a redplane NAT survives its switch's
##       crash; DEMO_ARGS="--lease-ms MS --connections N --keep"
demo: deps
	$(Q)$(MAKE) -s --no-print-directory $(RP_STORE) $(RP_LOAD) $(RP_DEMO) $(OUTPUT)/bpf/veth_peer.bpf.o
	$(Q)$(RP_DEMO) $(DEMO_ARGS)

## test: install what is missing, build, run every selftest; then the suites
##       that start rp-store or rp-load again, against builds with ASan and
##       UBSan (build/san), each fuzz target for FUZZ_SMOKE_SECONDS (5), and
##       spin on the protocol model's bounded configurations (docs/MODEL.md)
test: deps
	$(Q)$(MAKE) -s --no-print-directory all
	$(Q)RP_STORE=$(RP_STORE) RP_BUILD=$(OUTPUT) scripts/run-tests.sh $(SELFTESTS) $(TEST_FLAGS)
	$(Q)$(MAKE) -s --no-print-directory san-bins fuzz-bins
	$(Q)$(SAN_ENV) RP_STORE=$(SAN_OUTPUT)/rp-store RP_BUILD=$(SAN_OUTPUT) \
		scripts/run-tests.sh $(SELFTESTS) --filter '$(SAN_SUITES)' $(TEST_FLAGS)
	$(Q)fuzz/run.sh $(OUTPUT)/fuzz $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)
	$(Q)model/check.sh

## fuzz: each libFuzzer target (fuzz/) for FUZZ_SECONDS (300); FUZZ_TARGETS=
##       picks some of codec, store, chain, agent; what they find stays in
##       build/fuzz/corpus/NAME, a crash's input in build/fuzz/NAME-crash-*
fuzz: deps
	$(Q)$(MAKE) -s --no-print-directory fuzz-bins
	$(Q)fuzz/run.sh $(OUTPUT)/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

## fuzz-corpus: write the seed corpora (fuzz/corpus/NAME) anew from valid messages
fuzz-corpus: $(OUTPUT)/fuzz/corpus-gen
	$(Q)$(OUTPUT)/fuzz/corpus-gen fuzz/corpus

## vmtest: the selftests in a VM on another kernel (default: Debian bookworm's
##         6.1); VM_KERNEL_PKG=, VM_KERNEL_IMAGE=, VM_FILTER= (vmtests/run.sh);
##         no sanitizer pass, fuzz targets or model check (make test has them)
vmtest: deps
	$(Q)$(MAKE) -s --no-print-directory all
	$(Q)OUTPUT=$(OUTPUT) vmtests/run.sh

## bench: (root) every benchmark, one report: bench/report.md, bench/results.csv,
##        bench/plots/*.png and README's results (bench/report.sh, docs/BENCH.md;
##        under 20 minutes); BENCH_ARGS=--quick for a short trial run
bench: deps
	$(Q)$(MAKE) -s --no-print-directory all
	$(Q)OUTPUT=$(OUTPUT) bench/report.sh $(BENCH_ARGS)

## p4: build the Tofino (TNA) program with the SDE named by SDE=; without
##     it, check what can be checked here and say why the build skipped
p4:
	$(Q)OUTPUT=$(OUTPUT) p4-tofino/build.sh

## soak: (root) the fault soak: TCP through two switches and a chain of three
##       replicas while switches and replicas crash, routes move and the store
##       links lose, duplicate and reorder (SOAK_SECONDS=180, SOAK_SEED=N)
soak: deps
	$(Q)$(MAKE) -s --no-print-directory all
	$(Q)RP_STORE=$(RP_STORE) RP_BUILD=$(OUTPUT) scripts/run-tests.sh $(SOAK) --verbose

## takeover: (root) issue 16's takeover loop: a download through routers on
##           both sides, sw1 crashed or rerouted, the inbound or the outbound
##           packet first at sw2, TAKEOVER_RUNS=20 runs of each; each run's
##           stall and whether it arrived whole, a summary; fails if one did not
takeover: deps
	$(Q)$(MAKE) -s --no-print-directory all
	$(Q)RP_STORE=$(RP_STORE) RP_BUILD=$(OUTPUT) scripts/takeover.sh $(SELFTESTS) $(TAKEOVER_CASES)

## churn: (root) issue 17's churn: CHURN_CONNS=1000000 short TCP connections
##        through one NAT switch to one server port (512 ports, --max-flows 4096
##        on switch and store, short timeouts), then the firewall's third as
##        many; every one must succeed and both sides drain to zero flows
churn: deps
	$(Q)$(MAKE) -s --no-print-directory all
	$(Q)RP_STORE=$(RP_STORE) RP_BUILD=$(OUTPUT) RP_CHURN_CONNS=$(CHURN_CONNS) \
		$(SELFTESTS) --filter 'churn/*' -j1

## verify: spin on the protocol model, bigger bounds, bitstate search
##         (docs/MODEL.md; SECONDS_BUDGET=600 a search)
verify: deps
	$(Q)model/check.sh --full

## help: this list (V=1 shows full commands; OUTPUT=dir moves the build)
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## clean: remove the build directory
clean:
	$(call msg,CLEAN,$(OUTPUT))
	$(Q)rm -rf $(OUTPUT)

# rp-store and rp-load with ASan and UBSan, for make test (the BPF objects are the same)
.PHONY: san-bins fuzz-bins
san-bins:
	$(Q)$(MAKE) -s --no-print-directory OUTPUT=$(SAN_OUTPUT) SANITIZE=1 \
		$(SAN_OUTPUT)/rp-store $(SAN_OUTPUT)/rp-load $(SAN_OUTPUT)/bpf/veth_peer.bpf.o

fuzz-bins: $(FUZZ_BINS)
.SECONDARY: $(FUZZ_TARGETS:%=$(OUTPUT)/fuzz/obj/fuzz/fuzz_%.o)

$(OUTPUT)/fuzz/obj/%.o: %.c
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(ALL_CPPFLAGS) -Istore -Iuser $(FUZZ_CFLAGS) $(FUZZ_COV) -c $< -o $@

# no coverage in the session table: a chain RESET walks all 65535 records
$(OUTPUT)/fuzz/obj/store/session.o: FUZZ_COV :=

$(OUTPUT)/fuzz/fuzz-%: $(OUTPUT)/fuzz/obj/fuzz/fuzz_%.o $(FUZZ_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)

$(OUTPUT)/fuzz/corpus-gen: $(OUTPUT)/fuzz/corpus_gen.o $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS)

$(OUTPUT)/fuzz/corpus_gen.o: ALL_CPPFLAGS += -Istore

# The data plane, and the same code with replication compiled out (bench)
$(OUTPUT)/bpf/redplane.bpf.o: bpf/redplane.bpf.c $(BPF_HDRS)
	$(call msg,CLANG-BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/bpf/redplane_norepl.bpf.o: bpf/redplane.bpf.c $(BPF_HDRS)
	$(call msg,CLANG-BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -DRP_NO_REPLICATION -c $< -o $@

$(OUTPUT)/bpf/link_impair.bpf.o: bpf/link_impair.bpf.c
	$(call msg,CLANG-BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/bpf/veth_peer.bpf.o: bpf/veth_peer.bpf.c
	$(call msg,CLANG-BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# skeletons are rewritten only when they change
$(OUTPUT)/include/%.skel.h: $(OUTPUT)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) gen skeleton $< name $* > $@.tmp
	$(Q)cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@

SKELS := $(OUTPUT)/include/redplane.skel.h $(OUTPUT)/include/redplane_norepl.skel.h \
	 $(OUTPUT)/include/veth_peer.skel.h $(OUTPUT)/include/link_impair.skel.h

$(OUTPUT)/%.o: %.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(LIBREDPLANE): $(LIB_OBJS) $(STORE_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(RP_STORE): $(OUTPUT)/store/main.o $(OUTPUT)/store/coord.o $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) -lzookeeper_mt

$(RP_LOAD): $(LOAD_OBJS) $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BPF_LDLIBS)

$(LOAD_OBJS): $(SKELS)

$(RP_DEMO): $(OUTPUT)/user/rp-demo.o $(TOPO_OBJS) $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BPF_LDLIBS)

$(XDP_BENCH): $(OUTPUT)/bench/xdp-bench.o $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BPF_LDLIBS)

$(OUTPUT)/bench/xdp-bench.o: $(SKELS)

$(NAT_BENCH): $(OUTPUT)/bench/nat-bench.o $(TOPO_OBJS) $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BPF_LDLIBS)

$(OUTPUT)/bench/nat-bench.o: ALL_CPPFLAGS += -Iuser

$(CHURN_BENCH): $(OUTPUT)/bench/churn-bench.o $(TOPO_OBJS) $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BPF_LDLIBS)

$(OUTPUT)/bench/churn-bench.o: ALL_CPPFLAGS += -Iuser
$(OUTPUT)/bench/churn-bench.o: $(SKELS)

$(MODE_BENCH): $(OUTPUT)/bench/mode-bench.o $(TOPO_OBJS) $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BPF_LDLIBS)

$(OUTPUT)/bench/mode-bench.o: ALL_CPPFLAGS += -Iuser

# bench/failover-bench.sh: failover, redplane against nftables NAT + conntrackd
FAILOVER_BENCH := $(OUTPUT)/failover-bench
all: $(FAILOVER_BENCH)

$(FAILOVER_BENCH): $(OUTPUT)/bench/failover-bench.o $(TOPO_OBJS) $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BPF_LDLIBS) -lm

$(OUTPUT)/bench/failover-bench.o: ALL_CPPFLAGS += -Iuser

# fwd-bench: its traffic generator and sink (bpf/trafficgen.bpf.c)
$(OUTPUT)/bpf/trafficgen.bpf.o: bpf/trafficgen.bpf.c
	$(call msg,CLANG-BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(FWD_BENCH): $(OUTPUT)/bench/fwd-bench.o $(TOPO_OBJS) $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BPF_LDLIBS)

$(OUTPUT)/bench/fwd-bench.o: ALL_CPPFLAGS += -Iuser
$(OUTPUT)/bench/fwd-bench.o: $(SKELS) $(OUTPUT)/include/trafficgen.skel.h

$(MAP_BENCH): $(OUTPUT)/bench/map-bench.o $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BPF_LDLIBS)

$(OUTPUT)/bench/map-bench.o: $(SKELS)

$(OUTPUT)/rp-%: $(OUTPUT)/bench/rp-%.o $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) -lm

$(SELFTESTS): $(TEST_OBJS) $(TOPO_OBJS) $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BPF_LDLIBS) -lcriterion

$(OUTPUT)/selftests/%.o: ALL_CPPFLAGS += -Istore -Iselftests -Iuser
$(TEST_OBJS): $(SKELS)

# the soak: its own binary, not part of make test
$(SOAK): $(OUTPUT)/selftests/soak/soak.o $(OUTPUT)/selftests/rp_test.o \
	 $(OUTPUT)/selftests/topo_fixture.o $(TOPO_OBJS) $(LIBREDPLANE)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BPF_LDLIBS) -lcriterion

$(OUTPUT)/selftests/soak/soak.o: $(SKELS)

-include $(shell find $(OUTPUT) -name '*.d' -type f 2>/dev/null)
