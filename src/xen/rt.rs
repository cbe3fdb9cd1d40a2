//! What `core` and `alloc` need from their environment inside Xen: a global
//! allocator over `_xmalloc`/`xfree`, a panic handler that ends in Xen's
//! `panic()`, and console output through `printk`.
use super::ffi;
use core::alloc::{GlobalAlloc, Layout};
use core::fmt;

/// Print bytes on Xen's console as they are (no newline added).
pub fn print(s: &[u8]) {
    // SAFETY: s is a live slice: s.as_ptr() is valid for s.len() bytes,
    // which the shim only reads.
    unsafe { ffi::v4v_shim_print(s.as_ptr(), s.len()) }
}

/// Size of the console line buffer: well under printk's own buffer, small
/// enough for a hypervisor stack.
const LINE: usize = 256;

/// A `fmt::Write` that prints through `printk`, a line (or a full buffer)
/// at a time, so that output of several CPUs interleaves by whole lines.
pub struct Console {
    buf: [u8; LINE],
    len: usize,
}

impl Console {
    pub const fn new() -> Self {
        Console {
            buf: [0; LINE],
            len: 0,
        }
    }

    /// Print what is buffered.
    pub fn flush(&mut self) {
        if self.len > 0 {
            print(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

/// A `fmt::Write` into a fixed buffer that drops what does not fit.
struct Truncating {
    buf: [u8; LINE],
    len: usize,
}

impl fmt::Write for Truncating {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(LINE - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    let mut msg = Truncating {
        buf: [0; LINE],
        len: 0,
    };
    let _ = match info.location() {
        Some(loc) => write!(
            msg,
            "Rust panic at {}:{}: {}",
            loc.file(),
            loc.line(),
            info.message()
        ),
        None => write!(msg, "Rust panic: {}", info.message()),
    };
    // SAFETY: msg.buf is valid for msg.len (<= LINE) bytes; the shim reads
    // them and never returns.
    unsafe { ffi::v4v_shim_panic(msg.buf.as_ptr(), msg.len) }
}

/// The global allocator: Xen's xmalloc heap.
struct XenHeap;

// SAFETY: _xmalloc returns either null or a block of at least `size` bytes
// aligned to `align` (a power of two, as Layout guarantees), which stays
// valid until xfree; it is safe to call from any CPU with interrupts
// enabled, which is how the shim enters Rust. GlobalAlloc never sees a
// zero size (callers must not ask for one), so _xmalloc's zero-size special
// pointer never reaches Rust.
unsafe impl GlobalAlloc for XenHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl: any size and power-of-two alignment.
        unsafe { ffi::v4v_shim_alloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block this allocator returned and
        // does not use it again (GlobalAlloc::dealloc contract).
        unsafe { ffi::v4v_shim_free(ptr) }
    }
}

#[global_allocator]
static HEAP: XenHeap = XenHeap;
