//! The guest heap: a linked-list allocator over a static, page-aligned
//! arena inside the image, so every heap page has a known frame number.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use linked_list_allocator::Heap;
use v4v_abi::PAGE_SIZE;

/// Heap size: rings of a few pages, pfn lists, buffers.
pub const HEAP_SIZE: usize = 4 * 1024 * 1024;

#[repr(C, align(4096))]
struct Arena([u8; HEAP_SIZE]);

#[unsafe(link_section = ".bss.v4v_heap")]
static mut ARENA: Arena = Arena([0; HEAP_SIZE]);

struct Allocator(spin::Mutex<Heap>);

// SAFETY: all heap state is behind the mutex.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with
            // this layout.
            unsafe { self.0.lock().deallocate(p, layout) };
        }
    }
}

#[global_allocator]
static ALLOCATOR: Allocator = Allocator(spin::Mutex::new(Heap::empty()));

/// Hands the arena to the allocator. Called once at boot.
pub fn init() {
    let base = (&raw mut ARENA).cast::<u8>();
    debug_assert_eq!(base as usize % PAGE_SIZE, 0);
    // SAFETY: the arena is a static used for nothing else, and init runs
    // once before any allocation.
    unsafe { ALLOCATOR.0.lock().init(base, HEAP_SIZE) };
}

/// Bytes still free in the heap.
pub fn free() -> usize {
    ALLOCATOR.0.lock().free()
}
