//! The wasm build's allocator: a bump allocator that hands out memory upwards from the heap base
//! and only takes back the most recent allocation.
//!
//! A Function run is one short call over a bounded input (a few tens of kilobytes of line IDs and
//! strings even at 500 lines, far under the 10 MB memory limit), after which Shopify throws the
//! instance away — so freeing memory buys nothing. Replacing the default allocator (dlmalloc)
//! removes about 7 KB of code from the binary and a few hundred instructions per allocation.
//! Native builds (tests) keep the system allocator.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::Cell;

const PAGE: usize = 65_536;

extern "C" {
    /// First byte after the data and stack, placed by the linker.
    static __heap_base: u8;
}

pub struct BumpAllocator {
    /// Next free byte; 0 until the first allocation.
    next: Cell<usize>,
    /// End of the memory allocated so far (a page boundary).
    end: Cell<usize>,
}

// SAFETY: wasm32-unknown-unknown without the atomics feature has a single thread.
unsafe impl Sync for BumpAllocator {}

impl BumpAllocator {
    pub const fn new() -> BumpAllocator {
        BumpAllocator {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    /// Makes sure memory reaches `address`, growing it by whole pages; false when it cannot.
    fn reserve_to(&self, address: usize) -> bool {
        let end = self.end.get();
        if address <= end {
            return true;
        }
        let pages = (address - end).div_ceil(PAGE);
        if wasm32::memory_grow(0, pages) == usize::MAX {
            return false;
        }
        self.end.set(end + pages * PAGE);
        true
    }

    fn start(&self) {
        if self.next.get() == 0 {
            // Only the address of the linker symbol is taken, never its value.
            let heap_base = core::ptr::addr_of!(__heap_base) as usize;
            self.next.set(heap_base);
            self.end.set(wasm32::memory_size(0) * PAGE);
        }
    }
}

unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.start();
        let align = layout.align();
        let Some(start) = self
            .next
            .get()
            .checked_add(align - 1)
            .map(|a| a & !(align - 1))
        else {
            return core::ptr::null_mut();
        };
        let Some(new_next) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if !self.reserve_to(new_next) {
            return core::ptr::null_mut();
        }
        self.next.set(new_next);
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Only the latest allocation can be taken back (a short-lived String, typically).
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The latest allocation grows (or shrinks) in place: a Vec being filled costs no copies.
        if ptr as usize + layout.size() == self.next.get() {
            let Some(new_next) = (ptr as usize).checked_add(new_size) else {
                return core::ptr::null_mut();
            };
            if !self.reserve_to(new_next) {
                return core::ptr::null_mut();
            }
            self.next.set(new_next);
            return ptr;
        }
        // SAFETY: `layout` is valid and its alignment is kept; the caller upholds the rest.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new_ptr = unsafe { self.alloc(new_layout) };
        if !new_ptr.is_null() {
            // SAFETY: both blocks are live and distinct; the smaller size is copied.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
            }
        }
        new_ptr
    }
}
