# The Linux dom0 image (Debian kernel + busybox + Xen's toolstack) and the
# multi-domain harness tests/multi.py.
#
#   make dom0-image    build/dom0-$(XEN_VERSION)/vmlinux and the base tree
#                      build/dom0-$(XEN_VERSION)/rootfs (the dom0 of the Xen
#                      stack XEN_VERSION: scripts/dom0-image.sh)
#   make smoke-multi   one domU (the test guest in `demo` mode) created by
#                      dom0 with xl, judged by tests/multi.py
#
# For other scenarios: pack the base tree plus overlay directories with
#   $(DOM0_PACK) OUT.cpio DIR...
# ($(DOM0_GUEST_OVERLAY) holds /boot/v4v-test-guest; depend on
# dom0-guest-overlay) and boot it with $(MULTI) --initrd OUT.cpio.
.PHONY: dom0-image dom0-guest-overlay smoke-multi

DOM0_DIR := $(BUILD)/dom0-$(XEN_VERSION)
DOM0_VMLINUX := $(DOM0_DIR)/vmlinux
DOM0_ROOTFS := $(DOM0_DIR)/rootfs
# Inside build/dom0-$(XEN_VERSION), so removing the image removes its stamp too.
DOM0_STAMP := $(DOM0_DIR)/image.stamp
DOM0_PACK := V4V_XEN_VERSION=$(XEN_VERSION) bash $(ROOT)/scripts/dom0-image.sh pack
DOM0_GUEST_OVERLAY := $(DOM0_DIR)/overlay-guest
MULTI_TIMEOUT ?= 600
MULTI := python3 $(ROOT)/tests/multi.py --xen $(XEN_IMAGE) --vmlinux $(DOM0_VMLINUX) \
	--results $(RESULTS) --timeout $(MULTI_TIMEOUT)

dom0-image: $(DOM0_STAMP)
$(DOM0_STAMP): $(ROOT)/scripts/dom0-image.sh $(ROOT)/scripts/suite.sh $(ROOT)/scripts/debs.sh \
		$(ROOT)/dom0/init $(ROOT)/dom0/lib.sh | setup
	V4V_XEN_VERSION=$(XEN_VERSION) nice bash $(ROOT)/scripts/dom0-image.sh
	touch $@

# The test guest at /boot/v4v-test-guest, as an overlay for DOM0_PACK.
dom0-guest-overlay: guest
	@mkdir -p $(DOM0_GUEST_OVERLAY)/boot
	@cp $(GUEST_ELF) $(DOM0_GUEST_OVERLAY)/boot/v4v-test-guest

smoke-multi: dom0-image dom0-guest-overlay $(BOOT_XEN_DEP)
	@mkdir -p $(RESULTS)
	$(DOM0_PACK) $(DOM0_DIR)/smoke.cpio $(ROOT)/dom0/smoke $(DOM0_GUEST_OVERLAY)
	$(MULTI) --initrd $(DOM0_DIR)/smoke.cpio --name smoke-multi \
		--expect $(ROOT)/dom0/smoke/expect --counts $(RESULTS)/smoke-multi.counts
