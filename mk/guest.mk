# The Rust PV test guest and the QEMU harness (owned by the guest work).
.PHONY: guest boot-test run
guest:
	@false
boot-test:
	@false
run:
	@false
