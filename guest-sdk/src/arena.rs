//! The policy's memory allocator on wasm: a bump arena.
//!
//! The host runs every decision in a fresh instance and throws it away
//! afterwards, so nothing allocated in a decision ever needs to be freed for
//! reuse. A bump pointer over a static arena is then the fastest allocator
//! there is, and, more importantly, the arena lives in the module's initial
//! memory: a decision never calls `memory.grow`, which in the host's pooled
//! instances costs two `mprotect` calls and a TLB shootdown per decision.
//!
//! When the arena is full, allocation falls through to the system allocator
//! (which grows memory as usual, up to the host's memory cap), so a policy
//! that needs more memory still works; it is just slower.
//!
//! A policy crate that sets its own `#[global_allocator]` gets a link error
//! naming the duplicate; remove one of them.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use std::alloc::System;

/// Arena size: enough for every decision of the example policies (they use
/// tens of KiB) with a wide margin.
const ARENA_BYTES: usize = 1 << 20;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: wasm32-unknown-unknown components are single-threaded; the arena
// is never touched from two threads.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));

/// Offset of the next free byte; `Cell`-like, single-threaded (see above).
struct Next(UnsafeCell<usize>);
// SAFETY: as for `Arena`.
unsafe impl Sync for Next {}
static NEXT: Next = Next(UnsafeCell::new(0));

/// The bump allocator, installed as the global allocator on wasm32.
pub(crate) struct BumpArena;

impl BumpArena {
    fn base() -> usize {
        ARENA.0.get() as usize
    }

    fn contains(ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= Self::base() && p < Self::base() + ARENA_BYTES
    }
}

// SAFETY: every pointer returned is either inside the static arena, aligned
// as asked and not handed out twice, or comes from `System`; `dealloc` and
// `realloc` send `System` pointers back to `System`.
unsafe impl GlobalAlloc for BumpArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded access to NEXT (see `Next`).
        let next = unsafe { &mut *NEXT.0.get() };
        let start = (Self::base() + *next).next_multiple_of(layout.align());
        let end = start.saturating_add(layout.size());
        if end <= Self::base() + ARENA_BYTES {
            *next = end - Self::base();
            start as *mut u8
        } else {
            // SAFETY: forwarding the caller's valid layout.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::contains(ptr) {
            // SAFETY: single-threaded access to NEXT.
            let next = unsafe { &mut *NEXT.0.get() };
            // Give back the most recent allocation (a common pattern for
            // temporaries); anything else is reclaimed when the instance is.
            if ptr as usize + layout.size() == Self::base() + *next {
                *next = ptr as usize - Self::base();
            }
        } else {
            // SAFETY: the pointer came from `System.alloc` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if Self::contains(ptr) {
            // SAFETY: single-threaded access to NEXT.
            let next = unsafe { &mut *NEXT.0.get() };
            let is_last = ptr as usize + layout.size() == Self::base() + *next;
            let fits = (ptr as usize).saturating_add(new_size) <= Self::base() + ARENA_BYTES;
            if is_last && fits {
                // Grow or shrink the last allocation in place: strings and
                // vectors built by pushing cost no copies.
                *next = ptr as usize + new_size - Self::base();
                return ptr;
            }
        }
        // SAFETY: the default path: allocate, copy, free, with valid layouts.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
