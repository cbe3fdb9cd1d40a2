# The Rust test guest (PV and PVH) and the QEMU harness (owned by the guest work).
#
#   make guest       build the guest ELF (incremental)
#   make boot-test   boot Xen + the guest as dom0 in `tests` mode, judge it
#   make boot-test-pvh  the same with the guest as a PVH dom0
#   (make run and make run-dom0 are in mk/scenarios.mk)
#
# XEN_IMAGE is the multiboot Xen image QEMU boots; BOOT_XEN_DEP the target
# that builds it (empty: boot whatever XEN_IMAGE names, e.g. the unpatched
# one that `make xen-stock` builds for harness bring-up).
.PHONY: guest boot-test boot-test-pvh boot-test-debug boot-test-pvh-debug xen-stock boot-test-stock guest-clippy

GUEST_TRIPLE := x86_64-unknown-none
GUEST_TARGET_DIR := $(BUILD)/target-guest
GUEST_ELF := $(GUEST_TARGET_DIR)/$(GUEST_TRIPLE)/release/v4v-test-guest
# Static, non-PIE, kernel code model (the target's default); the linker
# script and link flags come from guest/build.rs.
GUEST_RUSTFLAGS := -C relocation-model=static -C force-frame-pointers=yes
BOOT_XEN_DEP ?= xen
BOOT_TIMEOUT ?= 120
BOOT := python3 $(ROOT)/tests/boot.py --xen $(XEN_IMAGE) --guest $(GUEST_ELF) \
	--results $(RESULTS) --timeout $(BOOT_TIMEOUT)

guest: setup
	RUSTFLAGS="$(GUEST_RUSTFLAGS)" nice $(CARGO) build --release -p v4v-test-guest \
		--target $(GUEST_TRIPLE) --target-dir $(GUEST_TARGET_DIR)

guest-clippy: setup
	RUSTFLAGS="$(GUEST_RUSTFLAGS)" nice $(CARGO) clippy --release -p v4v-test-guest \
		--target $(GUEST_TRIPLE) --target-dir $(GUEST_TARGET_DIR) -- -D warnings

boot-test: guest $(BOOT_XEN_DEP)
	@mkdir -p $(RESULTS)
	$(BOOT) --mode tests --name boot-dom0$(RESULT_SUFFIX) --counts $(RESULTS)/boot$(RESULT_SUFFIX).counts

# The same suite with the guest booted as a PVH dom0: the translated-guest
# half of the shim (GFNs through the p2m, linear addresses through the
# guest's page tables, the HVM hypercall path).
boot-test-pvh: guest $(BOOT_XEN_DEP)
	@mkdir -p $(RESULTS)
	$(BOOT) --mode tests --pvh --name boot-pvh-dom0$(RESULT_SUFFIX) --counts $(RESULTS)/boot-pvh$(RESULT_SUFFIX).counts

# The same on the debug hypervisor.
boot-test-debug:
	$(MAKE) --no-print-directory boot-test XEN_VARIANT=debug
boot-test-pvh-debug:
	$(MAKE) --no-print-directory boot-test-pvh XEN_VARIANT=debug

# An unpatched Xen (hypercall 43 answers -ENOSYS), for bringing up the guest
# and the harness without the engine.
XEN_STOCK := $(BUILD)/xen-stock-$(XEN_VERSION)
xen-stock: $(XEN_STOCK)/xen/xen
$(XEN_STOCK)/xen/xen: | setup
	bash scripts/xen-source.sh $(XEN_VERSION)
	rm -rf $(XEN_STOCK) && mkdir -p $(XEN_STOCK)
	cp -a $(CACHE)/xen-$(XEN_VERSION)-pristine/. $(XEN_STOCK)/
	$(MAKE) -C $(XEN_STOCK)/xen defconfig
	printf 'CONFIG_EXPERT=y\nCONFIG_VERBOSE_DEBUG=y\n' >> $(XEN_STOCK)/xen/.config
	$(MAKE) -C $(XEN_STOCK)/xen olddefconfig
	nice $(MAKE) -C $(XEN_STOCK)/xen -j2

boot-test-stock: guest xen-stock
	@mkdir -p $(RESULTS)
	$(BOOT) --xen $(XEN_STOCK)/xen/xen --mode tests --name boot-dom0-stock \
		--counts $(RESULTS)/boot-stock.counts
