# v4vctl, the dom0 command-line tool (tools/v4vctl): viptables, send and
# notify from Linux dom0 userspace through the privcmd device.
#
#   make v4vctl        build the static binary $(V4VCTL_BIN) and print its path
#
# Static (musl, static-pie) so that it runs in a busybox initramfs with no
# libc at all; stripped, since only its --help is meant for reading.
.PHONY: v4vctl

V4VCTL_TRIPLE := x86_64-unknown-linux-musl
V4VCTL_TARGET_DIR := $(BUILD)/target-tools
V4VCTL_BIN := $(V4VCTL_TARGET_DIR)/$(V4VCTL_TRIPLE)/release/v4vctl
V4VCTL_RUSTFLAGS := -C target-feature=+crt-static -C strip=symbols

v4vctl: setup
	RUSTFLAGS="$(V4VCTL_RUSTFLAGS)" nice $(CARGO) build --release -p v4vctl \
		--target $(V4VCTL_TRIPLE) --target-dir $(V4VCTL_TARGET_DIR)
	@echo "v4vctl: $(V4VCTL_BIN)"
