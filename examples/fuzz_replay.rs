//! Runs every file of the given directories through the fuzz target
//! (`v4v::sim::fuzz::run`) once, in name order: the corpus a fuzzing run
//! grew, replayed by a plain host build. `scripts/fuzz-coverage.sh` runs it
//! under cargo-llvm-cov to measure which lines of the engine the corpus
//! reaches (a host test would do, but it would count the product files'
//! own `#[cfg(test)]` modules as lines the corpus misses).
//!
//! `cargo +1.95.0 run --release --example fuzz_replay -- fuzz/corpus/ops
//! fuzz/regressions` (`V4V_FUZZ_TRACE=1` prints every hypercall).
use std::path::PathBuf;

fn main() {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        eprintln!("usage: fuzz_replay DIR...");
        std::process::exit(2);
    }
    let mut total = 0;
    for dir in &dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for p in &files {
            let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            v4v::sim::fuzz::run(&data);
        }
        println!("fuzz_replay: {dir}: {} inputs", files.len());
        total += files.len();
    }
    println!("fuzz_replay: {total} inputs, every check passed");
}
