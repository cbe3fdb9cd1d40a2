//! v4vctl: V4V from dom0 userspace (see `v4vctl --help`).
use std::io::Write;
use std::process::ExitCode;

use v4vctl::privcmd::Privcmd;

fn main() -> ExitCode {
    // args_os: a TEXT that is not UTF-8 must not panic, it is sent as is.
    let args = std::env::args_os().skip(1).collect();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let code = v4vctl::main_with(args, Privcmd::open, &mut out, &mut err);
    let _ = out.flush();
    ExitCode::from(code as u8)
}
