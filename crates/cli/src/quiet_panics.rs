//! One panic hook for the whole process, installed at start: it prints panics as Rust does,
//! except on a thread inside [`quietly`], whose panics are expected (a fixture check that
//! reports a mismatch, a GPU backend probed for whether it starts) and become a message.
//!
//! Why: swapping the global hook around such calls (take, set, restore) races with any other
//! thread that panics meanwhile, and loses panics of the whole process while it is swapped.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Installs the hook (call once, first thing in `main`).
pub fn install() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET.with(Cell::get) {
            default(info);
        }
    }));
}

/// Runs `f`; a panic on this thread is not printed and comes back as its message.
pub fn quietly<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let was = QUIET.with(|q| q.replace(true));
    let outcome = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    outcome.map_err(|cause| {
        cause
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| cause.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into())
    })
}
