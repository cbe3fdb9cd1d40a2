# Benchmarks (not tests).
#
#   make bench        all four below
#   make worst-case   the worst case of every V4V operation, timed under the
#                     instruction clock, with the test guest as dom0
#                     (guest/src/worst.rs): 16 MiB register/unregister, a
#                     maximal sendv, the viptables at 4096 rules, notify at
#                     4096 rules; log build/results/worst.serial
#   make bench-host   the copy engine on the host: a send through the engine
#                     into a 1 MiB simulated ring vs memcpy, 16 B to 64 KiB
#                     (benches/copy.rs); V4V_BENCH_SAMPLES sets the samples
#   make bench-xen    V4V against Argo in one boot of one hypervisor: two
#                     test domUs (guest/src/bench) stream, send one way and
#                     ping-pong over both, plus the null hypercall and the
#                     guest's memcpy (tests/bench.py); table, CSV and SVG in
#                     build/results/bench/{icount,wall}/ (bench-xen-icount,
#                     bench-xen-wall: one of the two clocks below)
#   make bench-vsock  AF_VSOCK over V4V (vsock-v4v/) against TCP over Xen's
#                     PV network (netfront, netback, a dom0 bridge) between
#                     the same two Linux domUs in one boot: throughput and
#                     round-trip latency, 64 B to 64 KiB writes
#                     (vsock-v4v/tools/vperf.c, dom0/vsock-bench,
#                     tests/vsock_bench.py); table and CSV in
#                     build/results/bench/vsock/
#
# bench-xen knobs: V4V_BENCH_REPS (repetitions of every figure, default 5),
# V4V_BENCH_MS (one streaming run, default 200), V4V_BENCH_PINGS (round
# trips per ping-pong run, default 200), V4V_BENCH_SENDS (timed sends per
# one-way run, default 256).
#
# bench-vsock knobs: V4V_VSOCK_BENCH_REPS (repetitions, default 5),
# V4V_VSOCK_BENCH_MS (one throughput run, default 1000),
# V4V_VSOCK_BENCH_PINGS (timed round trips per latency run, default 200),
# V4V_VSOCK_BENCH_SIZES (write sizes in bytes, comma-separated).
.PHONY: bench bench-host bench-xen bench-vsock worst-case

bench: bench-host bench-xen bench-vsock worst-case

worst-case: guest $(BOOT_XEN_DEP)
	@mkdir -p $(RESULTS)
	python3 $(ROOT)/tests/boot.py --xen $(XEN_IMAGE) --guest $(GUEST_ELF) \
		--results $(RESULTS) --timeout 900 --mode worst --name worst --icount 0

bench-host:
	$(CARGO) bench -p v4v --bench copy

V4V_BENCH_REPS ?= 5
V4V_BENCH_MS ?= 200
V4V_BENCH_PINGS ?= 200
V4V_BENCH_SENDS ?= 256
BENCH_TIMEOUT ?= 1800
BENCH_OVERLAY := $(DOM0_DIR)/overlay-bench

# Two clocks, one boot each (the same image):
#   icount  QEMU -icount shift=0,sleep=off: guest time is instructions
#           executed (1 ns each), so the figures count work and repeat to a
#           few per cent whatever the host does; both vCPUs share one host
#           thread (no parallelism: a stream costs sender plus receiver)
#   wall    plain multi-threaded TCG, host seconds: both vCPUs run at once,
#           but a busy 2-core host moves the figures by tens of per cent
bench-xen: bench-xen-icount bench-xen-wall

BENCH_DEPS := setup dom0-image dom0-guest-overlay $(BOOT_XEN_DEP)
BENCH_CPIO := $(DOM0_DIR)/bench.cpio
.PHONY: bench-xen-icount bench-xen-wall bench-cpio
bench-cpio: $(BENCH_DEPS)
	@mkdir -p $(RESULTS) $(BENCH_OVERLAY)/etc/v4v
	@printf 'BENCH_ARGS="reps=%s ms=%s pings=%s sends=%s"\nBENCH_TIMEOUT=%s\n' \
		$(V4V_BENCH_REPS) $(V4V_BENCH_MS) $(V4V_BENCH_PINGS) $(V4V_BENCH_SENDS) \
		$(BENCH_TIMEOUT) > $(BENCH_OVERLAY)/etc/v4v/bench.conf
	$(DOM0_PACK) $(BENCH_CPIO) $(ROOT)/dom0/bench $(DOM0_GUEST_OVERLAY) $(BENCH_OVERLAY)

# $(call bench_boot,CLOCK,EXTRA-ARGS)
bench_boot = python3 $(ROOT)/tests/bench.py --xen $(XEN_IMAGE) --vmlinux $(DOM0_VMLINUX) \
	--initrd $(BENCH_CPIO) --results $(RESULTS) --name bench-$(1) \
	--out $(RESULTS)/bench/$(1) --timeout $$(( $(BENCH_TIMEOUT) + 300 )) $(2) \
	--dom0-cmdline "console=hvc0 earlyprintk=xen quiet v4v_watchdog=$$(( $(BENCH_TIMEOUT) + 120 ))"

bench-xen-icount: bench-cpio
	$(call bench_boot,icount,--icount 0)

bench-xen-wall: bench-cpio
	$(call bench_boot,wall,)

# AF_VSOCK against TCP: the vsock boot's Linux domU image (with vperf and
# the role script) and dom0's script dom0/vsock-bench.
V4V_VSOCK_BENCH_REPS ?= 5
V4V_VSOCK_BENCH_MS ?= 1000
V4V_VSOCK_BENCH_PINGS ?= 200
V4V_VSOCK_BENCH_SIZES ?= 64,256,1024,4096,16384,65536
VSOCK_BENCH_TIMEOUT ?= 900
VSOCK_BENCH_OVERLAY := $(DOM0_DIR)/overlay-vsock-bench
VSOCK_BENCH_CPIO := $(DOM0_DIR)/vsock-bench.cpio

bench-vsock: setup dom0-image $(BOOT_XEN_DEP)
	@mkdir -p $(RESULTS) $(VSOCK_BENCH_OVERLAY)/etc/v4v
	$(LINUX_DOMU) overlay $(LINUX_OVERLAY)
	@printf 'VB_REPS=%s\nVB_MS=%s\nVB_PINGS=%s\nVB_SIZES=%s\nVB_TIMEOUT=%s\n' \
		$(V4V_VSOCK_BENCH_REPS) $(V4V_VSOCK_BENCH_MS) $(V4V_VSOCK_BENCH_PINGS) \
		$(V4V_VSOCK_BENCH_SIZES) $(VSOCK_BENCH_TIMEOUT) \
		> $(VSOCK_BENCH_OVERLAY)/etc/v4v/vsock-bench.conf
	$(DOM0_PACK) $(VSOCK_BENCH_CPIO) $(ROOT)/dom0/vsock-bench $(LINUX_OVERLAY) \
		$(VSOCK_BENCH_OVERLAY)
	python3 $(ROOT)/tests/vsock_bench.py --xen $(XEN_IMAGE) --vmlinux $(DOM0_VMLINUX) \
		--initrd $(VSOCK_BENCH_CPIO) --results $(RESULTS) --name bench-vsock \
		--out $(RESULTS)/bench/vsock --timeout $$(( $(VSOCK_BENCH_TIMEOUT) + 300 )) \
		--dom0-cmdline "console=hvc0 earlyprintk=xen quiet v4v_watchdog=$$(( $(VSOCK_BENCH_TIMEOUT) + 120 ))"
