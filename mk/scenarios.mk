# Multi-domain scenarios: Linux dom0 with xl, the test guest as several
# PV domUs, v4vctl in dom0.
#
#   make multi-test   every scenario of issue 4 in one boot, judged against
#                     dom0/scenarios/expect (build/results/multi.serial)
#   make run          three domUs talking, a viptables rule changing what
#                     gets through; a readable transcript on the terminal
#   make run-dom0     the older one-domain demo (the guest as dom0)
.PHONY: multi-test multi-test-debug starve-test starve-test-debug run run-dom0 dom0-tools-overlay

DOM0_TOOLS_OVERLAY := $(DOM0_DIR)/overlay-tools

# v4vctl at /usr/bin/v4vctl in the dom0 image.
dom0-tools-overlay: v4vctl
	@mkdir -p $(DOM0_TOOLS_OVERLAY)/usr/bin
	@cp $(V4VCTL_BIN) $(DOM0_TOOLS_OVERLAY)/usr/bin/v4vctl

SCENARIO_DEPS := dom0-image dom0-guest-overlay dom0-tools-overlay $(BOOT_XEN_DEP)

multi-test: $(SCENARIO_DEPS)
	@mkdir -p $(RESULTS)
	$(DOM0_PACK) $(DOM0_DIR)/scenarios.cpio $(ROOT)/dom0/scenarios \
		$(DOM0_GUEST_OVERLAY) $(DOM0_TOOLS_OVERLAY)
	$(MULTI) --initrd $(DOM0_DIR)/scenarios.cpio --name multi$(RESULT_SUFFIX) \
		--expect $(ROOT)/dom0/scenarios/expect --counts $(RESULTS)/multi$(RESULT_SUFFIX).counts

# The starvation scenario (dom0/starve), on 4 physical CPUs.
starve-test: $(SCENARIO_DEPS)
	@mkdir -p $(RESULTS)
	$(DOM0_PACK) $(DOM0_DIR)/starve.cpio $(ROOT)/dom0/starve \
		$(DOM0_GUEST_OVERLAY) $(DOM0_TOOLS_OVERLAY)
	$(MULTI) --smp 4 --initrd $(DOM0_DIR)/starve.cpio --name starve$(RESULT_SUFFIX) \
		--expect $(ROOT)/dom0/starve/expect --counts $(RESULTS)/starve$(RESULT_SUFFIX).counts

# The same boots on the debug hypervisor.
multi-test-debug:
	$(MAKE) --no-print-directory multi-test XEN_VARIANT=debug
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
