# Multi-domain scenarios: Linux dom0 with xl, the test guest as several
# PV domUs, v4vctl in dom0.
#
#   make multi-test   every scenario of issue 4 in one boot, judged against
#                     dom0/scenarios/expect (build/results/multi.serial);
#                     MULTI_PVH="a b" boots those domUs as PVH
#   make multi-test-pvh  the same with PVH domUs (multi-pvh)
#   make run          three domUs talking, a viptables rule changing what
#                     gets through; a readable transcript on the terminal
#   make run-dom0     the older one-domain demo (the guest as dom0)
.PHONY: multi-test multi-test-pvh multi-test-debug starve-test starve-test-debug run run-dom0 dom0-tools-overlay

DOM0_TOOLS_OVERLAY := $(DOM0_DIR)/overlay-tools

# v4vctl at /usr/bin/v4vctl in the dom0 image.
dom0-tools-overlay: v4vctl
	@mkdir -p $(DOM0_TOOLS_OVERLAY)/usr/bin
	@cp $(V4VCTL_BIN) $(DOM0_TOOLS_OVERLAY)/usr/bin/v4vctl

SCENARIO_DEPS := dom0-image dom0-guest-overlay dom0-tools-overlay $(BOOT_XEN_DEP)

# Which scenario domUs boot as PVH (dom0/lib.sh domu_type; the rest are
# PV), and the result name's tag for such a cast. The casts pair the kinds
# differently, so that across make test's boots every scenario runs PV to
# PV (multi-4.20: all PV), PVH to PVH (multi-pvh-4.20: a, b and the
# hostile h PVH), PV to PVH (multi-4.20-debug: b, c, b2 PVH) and PVH to
# PV (multi-4.17: a and c PVH).
MULTI_PVH_4.20 :=
MULTI_PVH_4.17 := a c
MULTI_PVH ?= $(MULTI_PVH_$(XEN_VERSION))
MULTI_TAG ?=
MULTI_KINDS_OVERLAY = $(DOM0_DIR)/overlay-kinds$(MULTI_TAG)

multi-test: $(SCENARIO_DEPS)
	@mkdir -p $(RESULTS) $(MULTI_KINDS_OVERLAY)/etc/v4v
	echo "$(MULTI_PVH)" > $(MULTI_KINDS_OVERLAY)/etc/v4v/pvh-domus
	$(DOM0_PACK) $(DOM0_DIR)/scenarios$(MULTI_TAG).cpio $(ROOT)/dom0/scenarios \
		$(DOM0_GUEST_OVERLAY) $(DOM0_TOOLS_OVERLAY) $(MULTI_KINDS_OVERLAY)
	$(MULTI) --initrd $(DOM0_DIR)/scenarios$(MULTI_TAG).cpio --name multi$(MULTI_TAG)$(RESULT_SUFFIX) \
		--expect $(ROOT)/dom0/scenarios/expect --counts $(RESULTS)/multi$(MULTI_TAG)$(RESULT_SUFFIX).counts

# The scenarios with PVH domUs: a and b (so PVH to PVH), the hostile h;
# c and b2 stay PV (PV to PVH, PVH to PV).
multi-test-pvh:
	$(MAKE) --no-print-directory multi-test MULTI_PVH="a b h" MULTI_TAG=-pvh

# The starvation scenario (dom0/starve), on 4 physical CPUs.
starve-test: $(SCENARIO_DEPS)
	@mkdir -p $(RESULTS)
	$(DOM0_PACK) $(DOM0_DIR)/starve.cpio $(ROOT)/dom0/starve \
		$(DOM0_GUEST_OVERLAY) $(DOM0_TOOLS_OVERLAY)
	$(MULTI) --smp 4 --initrd $(DOM0_DIR)/starve.cpio --name starve$(RESULT_SUFFIX) \
		--expect $(ROOT)/dom0/starve/expect --counts $(RESULTS)/starve$(RESULT_SUFFIX).counts

# The same boots on the debug hypervisor.
multi-test-debug:
	$(MAKE) --no-print-directory multi-test XEN_VARIANT=debug MULTI_PVH="b c b2"
starve-test-debug:
	$(MAKE) --no-print-directory starve-test XEN_VARIANT=debug

run: setup $(SCENARIO_DEPS)
	@mkdir -p $(RESULTS)
	$(DOM0_PACK) $(DOM0_DIR)/show.cpio $(ROOT)/dom0/show \
		$(DOM0_GUEST_OVERLAY) $(DOM0_TOOLS_OVERLAY)
	$(MULTI) --initrd $(DOM0_DIR)/show.cpio --name run --echo --show

run-dom0: setup $(BOOT_XEN_DEP) guest
	@mkdir -p $(RESULTS)
	$(BOOT) --mode demo --name run-demo --echo
