# Patched Xen with the Rust engine linked in.
#
#   make xen           the Rust archive, the patched and configured Xen tree,
#                      and the hypervisor: $(XEN_IMAGE) (multiboot image for
#                      QEMU -kernel) and $(XEN_SYMS) (the same, with symbols)
#   make disasm-check  the Rust code inside $(XEN_SYMS) obeys Xen's rules
#   make abi-check     xen/include/public/v4v.h agrees with the ABI crate, and
#                      xen/include/xen/v4v.h (the shim) with src/xen/ffi.rs
#                      and the v4v_rs_* definitions (scripts/ffi-check.py)
#
# Incremental: cargo runs only when a file its dep-info lists changed, the
# patch series is re-applied only when it changed (and then only the files
# it touches are rewritten), Xen is configured only when the patches or this
# file changed, and Xen's make only when one of those or the archive did.
# A Rust-only change re-runs cargo and relinks Xen.

# Two Xen releases, each with its own patch series (xen-patches/4.20,
# xen-patches/4.17) and the same Rust archive: XEN_VERSION (top Makefile;
# 4.20 by default) picks one. The source of each is Debian's where the
# archive serves it, else the Xen Project's verified release tarball
# (scripts/xen-source.sh; the build prints which).
#
# Two builds of each from the same series and the same engine source:
# XEN_VARIANT=release (the default: `make run`, `make bench`) and
# XEN_VARIANT=debug (CONFIG_DEBUG: Xen's ASSERTs and debug checks, with
# CONFIG_DEBUG_LOCKS; the engine built with Rust's debug assertions and
# overflow checks, and its lock-order check per physical CPU), each in its
# own tree, stamps and archive copy. `make xen-debug` and the *-debug
# targets below build and test the second. A third, XEN_VARIANT=flask, is
# the release build with Xen's security modules and FLASK compiled in
# (CONFIG_XSM, CONFIG_XSM_FLASK; no built-in policy: the enforcing boot of
# mk/flask.mk hands Xen its test policy as a boot module) and the release
# engine archive.
ifeq ($(filter $(XEN_VERSION),4.20 4.17),)
$(error XEN_VERSION must be 4.20 or 4.17, not '$(XEN_VERSION)')
endif
XEN_VARIANT ?= release
ifeq ($(XEN_VARIANT),debug)
XEN_VARIANT_SUFFIX := -debug
XEN_KCONFIG_VARIANT := CONFIG_DEBUG=y CONFIG_DEBUG_LOCKS=y
XEN_RUSTFLAGS_VARIANT := -C debug-assertions=on -C overflow-checks=on
else ifeq ($(XEN_VARIANT),release)
XEN_VARIANT_SUFFIX :=
XEN_KCONFIG_VARIANT := CONFIG_DEBUG=n
XEN_RUSTFLAGS_VARIANT :=
else ifeq ($(XEN_VARIANT),flask)
XEN_VARIANT_SUFFIX := -flask
XEN_KCONFIG_VARIANT := CONFIG_DEBUG=n CONFIG_XSM=y CONFIG_XSM_FLASK=y CONFIG_XSM_FLASK_POLICY=n
XEN_RUSTFLAGS_VARIANT :=
else
$(error XEN_VARIANT must be release, debug or flask, not '$(XEN_VARIANT)')
endif
# The engine archive a variant links: flask's is the release one.
XEN_RUST_VARIANT := $(if $(filter flask,$(XEN_VARIANT)),release,$(XEN_VARIANT))
XEN_TREE := $(BUILD)/xen-$(XEN_VERSION)$(XEN_VARIANT_SUFFIX)
XEN_STAMPS := $(BUILD)/stamps-xen-$(XEN_VERSION)$(XEN_VARIANT_SUFFIX)
# Results (logs, counts) of one hypervisor: boot-4.20, multi-4.17-debug, ...
RESULT_SUFFIX := -$(XEN_VERSION)$(XEN_VARIANT_SUFFIX)
XEN_DIR := $(XEN_TREE)/xen
XEN_SRC_STAMP := $(CACHE)/xen-$(XEN_VERSION)-src.stamp
XEN_IMAGE := $(XEN_DIR)/xen
XEN_SYMS := $(XEN_DIR)/xen-syms
XEN_PUBLIC_HEADER := $(XEN_DIR)/include/public/v4v.h
XEN_PATCHES := xen-patches/$(XEN_VERSION)
XEN_PATCHED := $(XEN_STAMPS)/xen-patched
XEN_CONFIGURED := $(XEN_STAMPS)/xen-configured
XEN_JOBS ?= 2
# The configuration: Xen's own defconfig, then the options of
# xen-patches/xen.config (each with the reason it is set), then the
# variant's. Checked afterwards: every option asked for has that value.
XEN_KCONFIG := xen-patches/xen.config

RUST_TARGET := x86_64-unknown-none
# Both variants share one target directory: the variant's flags go to the
# engine crate alone (after `--`), so core, alloc and the dependencies are
# built once, and cargo rebuilds only the engine when the variant changes.
# Each variant's archive is copied out to a name of its own; the two are
# never built at the same time.
RUST_TARGET_DIR := $(BUILD)/target-xen
RUST_OUT := $(RUST_TARGET_DIR)/$(RUST_TARGET)/release/libv4v.a
RUST_LIB := $(RUST_TARGET_DIR)/libv4v-$(XEN_RUST_VARIANT).a
XEN_RUST_LIB := $(XEN_STAMPS)/libv4v.a
# Code that links into Xen: position independent without a GOT (Xen is
# linked above the top 2 GiB), no unwind tables, Xen's retpoline and return
# thunks, and ENDBR64 on every function whose address is taken (Xen runs
# with CET-IBT where the CPU has it).
XEN_RUSTFLAGS := -C relocation-model=pie -C force-unwind-tables=no \
	-Z plt=yes -Z direct-access-external-data=yes \
	-Z function-return=thunk-extern -Z retpoline-external-thunk \
	-Z cf-protection=branch
# `cargo rustc --crate-type staticlib`: the crate also declares an rlib, and
# cargo applies the profile's fat LTO only to a build without one. LTO keeps
# only what the three entry points reach, in one object.
XEN_CARGO := RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(XEN_RUSTFLAGS)" nice $(CARGO) rustc \
	--release -p v4v --lib --crate-type staticlib --target $(RUST_TARGET) \
	-Z build-std=core,compiler_builtins,alloc --target-dir $(RUST_TARGET_DIR)

export XEN_IMAGE XEN_SYMS RUST_LIB

.PHONY: xen xen-rust xen-patch xen-config xen-rebuild disasm-check abi-check \
	xen-debug disasm-check-debug xen-flask

xen: $(XEN_IMAGE)

xen-rust: $(RUST_LIB)
xen-patch: $(XEN_PATCHED)
xen-config: $(XEN_CONFIGURED)

# --- The Rust archive -------------------------------------------------------
# cargo's dep-info names every source file the archive was built from. Each
# also gets an empty rule, so that a deleted file means "rebuild", not "no
# rule to make it".
XEN_RUST_DEPS := $(filter-out %:,$(shell cat $(RUST_OUT:.a=.d) 2>/dev/null))
$(XEN_RUST_DEPS):
$(RUST_LIB): Cargo.toml Cargo.lock rust-toolchain.toml abi/Cargo.toml mk/xen.mk $(XEN_RUST_DEPS)
	$(XEN_CARGO) -- $(XEN_RUSTFLAGS_VARIANT)
	cp $(RUST_OUT) $@.tmp && mv $@.tmp $@

# What Xen links: a copy of the archive, replaced only when its content
# changed, so that a rebuild that produced the same code (a comment edit)
# does not relink Xen. The stamp records that the copy is current.
XEN_RUST_STAMP := $(XEN_STAMPS)/libv4v.copied
$(XEN_RUST_STAMP): $(RUST_LIB) $(if $(wildcard $(XEN_RUST_LIB)),,xen-force)
	@mkdir -p $(@D)
	@cmp -s $< $(XEN_RUST_LIB) || { echo "  CP      $(XEN_RUST_LIB)"; cp $< $(XEN_RUST_LIB).tmp && mv $(XEN_RUST_LIB).tmp $(XEN_RUST_LIB); }
	@touch $@
$(XEN_RUST_LIB): $(XEN_RUST_STAMP) ;

# --- The patched tree -------------------------------------------------------
# The stamps live outside the trees they describe (so that `make clean`,
# which removes the trees, cannot leave a stale one behind): a missing tree,
# .config or archive copy forces its rule.
.PHONY: xen-force
xen-force:
$(XEN_PATCHED): $(XEN_PATCHES)/series $(wildcard $(XEN_PATCHES)/*.patch) scripts/xen-patches.sh \
		scripts/xen-source.sh $(if $(wildcard $(XEN_DIR)/Makefile),,xen-force)
	V4V_XEN_VERSION=$(XEN_VERSION) V4V_XEN_TREE=$(XEN_TREE) bash scripts/xen-patches.sh apply
	@mkdir -p $(@D) && touch $@

# --- Configuration ----------------------------------------------------------
XEN_KCONFIG_SEED := $(XEN_STAMPS)/xen-kconfig.seed
$(XEN_CONFIGURED): $(XEN_PATCHED) $(XEN_KCONFIG) mk/xen.mk $(if $(wildcard $(XEN_DIR)/.config),,xen-force)
	@mkdir -p $(XEN_STAMPS)
	{ sed -e 's/#.*//' -e '/^[[:space:]]*$$/d' $(XEN_KCONFIG); \
	  for o in $(XEN_KCONFIG_VARIANT); do echo "$$o"; done; } > $(XEN_KCONFIG_SEED).new
	@# Only remake .config when the seed changed (or there is none): an
	@# untouched .config keeps Xen's build from redoing anything.
	if [ ! -f $(XEN_DIR)/.config ] || ! cmp -s $(XEN_KCONFIG_SEED).new $(XEN_KCONFIG_SEED); then \
	    $(MAKE) -s -C $(XEN_DIR) defconfig && \
	    while IFS='=' read -r o v; do \
	        sed -i "/^$$o=/d; /^# $$o is not set/d" $(XEN_DIR)/.config; \
	        if [ "$$v" = n ]; then echo "# $$o is not set"; else echo "$$o=$$v"; fi >> $(XEN_DIR)/.config; \
	    done < $(XEN_KCONFIG_SEED).new && \
	    $(MAKE) -s -C $(XEN_DIR) olddefconfig && \
	    mv $(XEN_KCONFIG_SEED).new $(XEN_KCONFIG_SEED); \
	fi
	while IFS='=' read -r o v; do \
	    if [ "$$v" = n ]; then grep -qx "# $$o is not set" $(XEN_DIR)/.config || ! grep -q "^$$o=" $(XEN_DIR)/.config; \
	    else grep -qx "$$o=$$v" $(XEN_DIR)/.config; fi \
	    || { echo "xen.mk: $$o=$$v did not stick in $(XEN_DIR)/.config (a dependency missing?)" >&2; exit 1; }; \
	done < $(XEN_KCONFIG_SEED)
	@echo "Xen $(XEN_VERSION) ($(XEN_VARIANT)) from $$(head -n1 $(XEN_SRC_STAMP))"
	@touch $@

# --- The hypervisor ---------------------------------------------------------
# Xen's own make does the fine-grained work; it is entered only when the
# archive, the patches or the configuration changed (edits made by hand in
# build/xen: `make xen-rebuild`).
# XEN_BUILD_PE=n: no xen.efi (QEMU boots the multiboot image); it would
# double every link.
XEN_MAKE := nice $(MAKE) -C $(XEN_DIR) -j$(XEN_JOBS) XEN_BUILD_PE=n V4V_RUST_LIB=$(XEN_RUST_LIB)
$(XEN_IMAGE): $(XEN_RUST_LIB) $(XEN_CONFIGURED) $(if $(wildcard $(XEN_SYMS)),,xen-force)
	$(XEN_MAKE)
	@touch $@ $(XEN_SYMS)

$(XEN_SYMS): $(XEN_IMAGE)

# After editing the tree by hand (then commit there and
# `V4V_XEN_VERSION=... scripts/xen-patches.sh export`).
xen-rebuild: $(XEN_RUST_LIB) $(XEN_CONFIGURED)
	$(XEN_MAKE)

# --- Checks -----------------------------------------------------------------
disasm-check: $(XEN_IMAGE)
	@mkdir -p $(RESULTS)
	python3 scripts/disasm-check.py --self-test --counts $(RESULTS)/disasm$(RESULT_SUFFIX).counts \
	    $(XEN_SYMS) $(XEN_RUST_LIB)

# The debug hypervisor (see XEN_VARIANT above).
xen-debug:
	$(MAKE) --no-print-directory xen XEN_VARIANT=debug
disasm-check-debug:
	$(MAKE) --no-print-directory disasm-check XEN_VARIANT=debug

# The FLASK hypervisor (see XEN_VARIANT above; its boot is in mk/flask.mk).
xen-flask:
	$(MAKE) --no-print-directory xen XEN_VARIANT=flask

ABI_CHECK_DIR := $(BUILD)/abi-check-$(XEN_VERSION)
abi-check: $(XEN_PATCHED)
	@mkdir -p $(RESULTS) $(ABI_CHECK_DIR)
	gcc -std=c99 -Wall -Wextra -Werror -I$(XEN_DIR)/include \
	    -o $(ABI_CHECK_DIR)/abi-dump-c scripts/abi-check.c
	$(ABI_CHECK_DIR)/abi-dump-c > $(ABI_CHECK_DIR)/c.txt
	$(CARGO) run -q -p v4v-abi --example abi_dump > $(ABI_CHECK_DIR)/rust.txt
	@# Two checks in one stage: abi-check.sh (the public header against the
	@# ABI crate) and ffi-check.py (the shim's header, xen/v4v.h, against
	@# src/xen/ffi.rs and the v4v_rs_* definitions). scripts/test.sh reads
	@# one counts file per stage, named after it, so each check writes its
	@# own counts here and the stage's file is their sum. Both run even when
	@# the first fails; the recipe fails when either did.
	rm -f $(ABI_CHECK_DIR)/abi.counts $(ABI_CHECK_DIR)/ffi.counts
	rc=0; \
	bash scripts/abi-check.sh $(ABI_CHECK_DIR)/c.txt $(ABI_CHECK_DIR)/rust.txt \
	    $(ABI_CHECK_DIR)/abi.counts || rc=1; \
	python3 scripts/ffi-check.py --self-test --counts $(ABI_CHECK_DIR)/ffi.counts \
	    $(XEN_DIR)/include/xen/v4v.h || rc=1; \
	cat $(ABI_CHECK_DIR)/abi.counts $(ABI_CHECK_DIR)/ffi.counts 2>/dev/null | \
	    awk '{ p += $$1; f += $$2 } END { print p + 0, f + 0 }' \
	    > $(RESULTS)/abi-check$(RESULT_SUFFIX).counts; \
	exit $$rc
