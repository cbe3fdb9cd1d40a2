# Benchmarks (not tests). `make bench-host`: the copy engine on the host,
# a send through the engine into a 1 MiB simulated ring vs memcpy, 16 B to
# 64 KiB (benches/copy.rs); V4V_BENCH_SAMPLES sets the samples per size.
CARGO ?= cargo +1.95.0
.PHONY: bench-host
bench-host:
	$(CARGO) bench -p v4v --bench copy
