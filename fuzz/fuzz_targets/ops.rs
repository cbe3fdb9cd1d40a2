//! Operation sequences from several hostile domains against the engine; the
//! decoder and every check live in `v4v::sim::fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    v4v::sim::fuzz::run(data);
});
