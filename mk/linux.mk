# Linux domUs with AF_VSOCK over V4V (issue 6; vsock-v4v/, scripts/linux-domu.sh).
#
#   make vsock-module   build/linux-$(XEN_VERSION)/vsock-v4v.ko against Debian's
#                       headers for the kernel in build/dom0-$(XEN_VERSION)/kernel.env
#                       (-Werror; another kernel: V4V_LINUX_KERNEL=ABI:VERSION,
#                       see scripts/linux-domu.sh)
#   make linux-domu     the domU initramfs build/linux-$(XEN_VERSION)/domu.cpio
#   make vsock-test     one boot: two Linux PV domUs over AF_VSOCK (socat echo,
#                       64 MiB, 32 connections, refusal, viptables, peer
#                       death, rmmod) and a Linux PVH domU with them (echo,
#                       64 MiB, peer death both ways), judged against
#                       dom0/vsock/expect
#                       (build/results/vsock.serial)
.PHONY: vsock-module linux-domu vsock-test

LINUX_DOMU := V4V_XEN_VERSION=$(XEN_VERSION) bash $(ROOT)/scripts/linux-domu.sh
LINUX_OVERLAY := $(BUILD)/linux-$(XEN_VERSION)/overlay-dom0
# The boot takes about 3.5 min here; dom0's script gets 10 min, QEMU 11.
VSOCK_WATCHDOG ?= 600
VSOCK_TIMEOUT ?= 660

vsock-module: dom0-image
	$(LINUX_DOMU) module

linux-domu: dom0-image
	$(LINUX_DOMU) image

vsock-test: dom0-image dom0-guest-overlay dom0-tools-overlay $(BOOT_XEN_DEP)
	@mkdir -p $(RESULTS)
	$(LINUX_DOMU) overlay $(LINUX_OVERLAY)
	$(DOM0_PACK) $(DOM0_DIR)/vsock.cpio $(ROOT)/dom0/vsock $(DOM0_GUEST_OVERLAY) \
		$(DOM0_TOOLS_OVERLAY) $(LINUX_OVERLAY)
	$(MULTI) --initrd $(DOM0_DIR)/vsock.cpio --name vsock$(RESULT_SUFFIX) \
		--timeout $(VSOCK_TIMEOUT) \
		--dom0-cmdline "console=hvc0 earlyprintk=xen quiet v4v_watchdog=$(VSOCK_WATCHDOG)" \
		--expect $(ROOT)/dom0/vsock/expect --counts $(RESULTS)/vsock$(RESULT_SUFFIX).counts
