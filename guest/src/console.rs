//! Console output, line-buffered.
//!
//! dom0 writes with `console_io` (hypercall 18), which Xen copies straight
//! to its serial line. A domU writes into its PV console ring (the
//! `xencons_interface` page that start_info names, drained by xenconsoled)
//! and, when the hypervisor allows it (CONFIG_VERBOSE_DEBUG), mirrors each
//! line to the Xen console too, where it shows up prefixed with "(dN) ".

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

use crate::xen::{event, hypercall, mm, nr, sched, start_info};

const CONSOLEIO_WRITE: u64 = 0;
const LINE_MAX: usize = 256;

// xencons_interface layout: in[1024] @0, out[2048] @1024, in_cons @3072,
// in_prod @3076, out_cons @3080, out_prod @3084.
const OUT_OFFSET: usize = 1024;
const OUT_SIZE: u32 = 2048;
const OUT_CONS: usize = 3080;
const OUT_PROD: usize = 3084;

/// Yields to wait for xenconsoled before output is dropped.
const MAX_WAIT_YIELDS: u32 = 200_000;

struct Ring {
    page: *mut u8,
    evtchn: u32,
}

pub struct Console {
    line: [u8; LINE_MAX],
    len: usize,
    ring: Option<Ring>,
    console_io: bool,
}

// SAFETY: the raw ring pointer is only used under the console lock, by
// whichever vCPU holds it; the ring page is mapped for the domain's life.
unsafe impl Send for Console {}

static CONSOLE: spin::Mutex<Console> = spin::Mutex::new(Console {
    line: [0; LINE_MAX],
    len: 0,
    ring: None,
    console_io: true,
});

/// Chooses the backend from start_info: console_io for dom0, the PV
/// console ring for a domU.
pub fn init() {
    let si = start_info::get();
    if si.is_dom0() {
        return;
    }
    // SAFETY: the console slot of the window is mapped only here.
    let mapped = unsafe { mm::map_window(mm::SLOT_CONSOLE, si.console_mfn) };
    let mut c = lock();
    c.flush_line();
    if let Ok(page) = mapped {
        c.ring = Some(Ring {
            page,
            evtchn: si.console_evtchn,
        });
    }
}

fn console_io_write(bytes: &[u8]) -> i64 {
    // SAFETY: Xen reads `bytes.len()` bytes from a live slice.
    unsafe {
        hypercall::hypercall3(
            nr::CONSOLE_IO,
            CONSOLEIO_WRITE,
            bytes.len() as u64,
            bytes.as_ptr() as u64,
        )
    }
}

impl Ring {
    fn index(&self, off: usize) -> &AtomicU32 {
        // SAFETY: the ring page is mapped for the domain's life; out_cons
        // and out_prod are aligned u32s shared with xenconsoled.
        unsafe { AtomicU32::from_ptr(self.page.add(off).cast::<u32>()) }
    }

    fn write(&self, mut bytes: &[u8]) {
        let mut waited = 0;
        while !bytes.is_empty() {
            let cons = self.index(OUT_CONS).load(Ordering::Acquire);
            let prod = self.index(OUT_PROD).load(Ordering::Relaxed);
            let used = prod.wrapping_sub(cons);
            if used >= OUT_SIZE {
                if waited >= MAX_WAIT_YIELDS {
                    return;
                }
                event::send(self.evtchn);
                sched::yield_now();
                waited += 1;
                continue;
            }
            let n = ((OUT_SIZE - used) as usize).min(bytes.len());
            for (i, &b) in bytes[..n].iter().enumerate() {
                let at = OUT_OFFSET + (prod.wrapping_add(i as u32) % OUT_SIZE) as usize;
                // SAFETY: `at` is inside out[] of the mapped ring page.
                unsafe { self.page.add(at).write_volatile(b) };
            }
            self.index(OUT_PROD)
                .store(prod.wrapping_add(n as u32), Ordering::Release);
            bytes = &bytes[n..];
        }
        event::send(self.evtchn);
    }

    fn drain(&self) {
        for _ in 0..MAX_WAIT_YIELDS {
            let cons = self.index(OUT_CONS).load(Ordering::Acquire);
            let prod = self.index(OUT_PROD).load(Ordering::Relaxed);
            if cons == prod {
                return;
            }
            event::send(self.evtchn);
            sched::yield_now();
        }
    }
}

impl Console {
    fn emit(&mut self, bytes: &[u8]) {
        match &self.ring {
            None => {
                console_io_write(bytes);
            }
            Some(ring) => {
                ring.write(bytes);
                if self.console_io && console_io_write(bytes) < 0 {
                    self.console_io = false;
                }
            }
        }
    }

    fn flush_line(&mut self) {
        if self.len > 0 {
            let line = self.line;
            let len = self.len;
            self.len = 0;
            self.emit(&line[..len]);
        }
    }

    fn put(&mut self, b: u8) {
        self.line[self.len] = b;
        self.len += 1;
        if b == b'\n' || self.len == LINE_MAX {
            self.flush_line();
        }
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(|b| self.put(b));
        Ok(())
    }
}

/// vCPU holding [`CONSOLE`], plus one (0: nobody). Set right after taking
/// the lock and cleared right before releasing it, so the panic path can
/// tell a writer it interrupted on its own vCPU from one busy elsewhere.
static OWNER: AtomicU32 = AtomicU32::new(0);

/// Spins the panic path waits for another vCPU's writer to finish.
const PANIC_WAIT_SPINS: u64 = 1 << 28;

/// The console lock, with its holder recorded in [`OWNER`].
struct Guard(spin::MutexGuard<'static, Console>);

impl Drop for Guard {
    fn drop(&mut self) {
        // Runs before the inner guard releases the lock.
        OWNER.store(0, Ordering::Release);
    }
}

impl core::ops::Deref for Guard {
    type Target = Console;
    fn deref(&self) -> &Console {
        &self.0
    }
}

impl core::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Console {
        &mut self.0
    }
}

fn lock() -> Guard {
    let g = CONSOLE.lock();
    OWNER.store(crate::smp::cpu_id() + 1, Ordering::Release);
    Guard(g)
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let _ = lock().write_fmt(args);
}

/// Writes out a partial line and waits until the console ring is drained.
pub fn flush() {
    let mut c = lock();
    c.flush_line();
    if let Some(ring) = &c.ring {
        ring.drain();
    }
}

/// Makes the console usable for a panic or exception report, which never
/// returns to the code it interrupted. Returns false when another vCPU
/// kept the lock for the whole wait (the caller should not print).
///
/// If this vCPU holds the lock, the writer was interrupted here and never
/// resumes, so the lock is freed. If another vCPU holds it, that writer is
/// live (vCPUs are only downed outside the lock, and a writer that faults
/// takes this path on its own vCPU) and gets a bounded time to finish.
pub fn release_for_panic() -> bool {
    if OWNER.load(Ordering::Acquire) == crate::smp::cpu_id() + 1 {
        // SAFETY: the holder is the interrupted code on this vCPU, which
        // never runs again (panics abort, exceptions crash the domain);
        // its guard and borrow of the console are dead.
        unsafe { CONSOLE.force_unlock() };
        OWNER.store(0, Ordering::Release);
        return true;
    }
    for _ in 0..PANIC_WAIT_SPINS {
        if !CONSOLE.is_locked() {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::_print(format_args!($($arg)*)));
}

#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::_print(format_args!("{}\n", format_args!($($arg)*))));
}
