//! V4V test guest: a `no_std` x86_64 kernel, PV or PVH, that exercises the V4V
//! hypercall from inside a Xen domain, as dom0 or as a domU.
//!
//! Modes (first word of the command line): `tests` runs the test list and
//! prints TAP-like `V4VT` lines; `demo` registers a ring, sends itself a
//! few messages and prints a readable transcript; `scenario` plays a role
//! in a multi-domain run; `bench` one side of `make bench`.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod argo;
mod bench;
mod cmdline;
mod console;
mod demo;
mod heap;
mod pvh;
mod scenario;
mod smp;
mod tests;
mod v4v;
mod worst;
mod xen;

use xen::sched::{self, Reason};
use xen::start_info::{self, StartInfo};

/// Rust entry, called by `_start` on the guest's own stack.
extern "C" fn start(si: *const StartInfo) -> ! {
    // SAFETY: `si` is what Xen passed in rsi at entry.
    unsafe { start_info::set(si) };
    let si = start_info::get();
    let percpu = smp::init();
    heap::init();
    let shared = xen::event::map_shared_info();
    console::init();
    let traps = arch::install_trap_table();
    let (major, minor) = xen::version();
    println!(
        "V4V test guest: {}{} on Xen {}.{} ({}), {} pages, cmdline '{}'",
        if si.is_dom0() { "dom0" } else { "domU" },
        if si.is_privileged() {
            " (privileged)"
        } else {
            ""
        },
        major,
        minor,
        si.magic_str(),
        si.nr_pages,
        si.cmd_line_str()
    );
    if let Err(rc) = shared {
        println!("V4V test guest: mapping shared info failed: {}", rc);
    }
    if traps != 0 {
        println!("V4V test guest: set_trap_table failed: {}", traps);
    }
    if percpu != 0 {
        println!("V4V test guest: per-vCPU GS base failed: {}", percpu);
    }

    let cmd = cmdline::CmdLine::parse(si.cmd_line_str());
    match cmd.mode() {
        "tests" => tests::run(&cmd),
        "demo" => demo::run(&cmd),
        "scenario" => scenario::run(&cmd),
        "bench" => bench::run(&cmd),
        "worst" => worst::run(&cmd),
        // Harness self-checks: an exception, a panic, a guest that hangs.
        "fault" => {
            println!("V4VT plan 1");
            // SAFETY: deliberately reads an unmapped address to show the
            // exception path; the trap handler ends the domain.
            let v = unsafe { (tests::UNMAPPED as *const u64).read_volatile() };
            println!("read {v:#x} from an unmapped page?");
        }
        "panic" => panic!("panic mode requested"),
        "hang" => loop {
            sched::yield_now();
        },
        other => println!("V4VT bail out! unknown mode '{}'", other),
    }
    console::flush();
    // A dom0 test kernel must not power off (Xen then halts without ending
    // QEMU); a reboot ends QEMU under -no-reboot.
    sched::shutdown(if si.is_dom0() {
        Reason::Reboot
    } else {
        Reason::Poweroff
    })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if !console::release_for_panic() {
        // Another vCPU's writer never let go: end without a report.
        sched::shutdown(Reason::Crash);
    }
    let cpu = smp::cpu_id();
    match info.location() {
        Some(l) => println!(
            "V4VT bail out! panic on vCPU {} at {}:{}: {}",
            cpu,
            l.file(),
            l.line(),
            info.message()
        ),
        None => println!("V4VT bail out! panic on vCPU {}: {}", cpu, info.message()),
    }
    sched::crash()
}
