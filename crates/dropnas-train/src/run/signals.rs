//! SIGINT and SIGTERM: the first asks the run to stop after the current step (it writes a
//! checkpoint and says how to resume); a second one exits at once, as a user pressing Ctrl-C
//! twice expects.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The signals that stop a run.
pub const STOP_SIGNALS: [i32; 2] = [libc::SIGINT, libc::SIGTERM];

struct Flags {
    asked: Arc<AtomicBool>,
    which: Arc<AtomicUsize>,
}

static FLAGS: OnceLock<Option<Flags>> = OnceLock::new();

/// Installs the handlers (once per process; later calls do nothing). Without them (a platform
/// where installing fails), the signals keep their default effect.
pub fn install() {
    FLAGS.get_or_init(|| {
        let asked = Arc::new(AtomicBool::new(false));
        let which = Arc::new(AtomicUsize::new(0));
        for sig in STOP_SIGNALS {
            // order matters: the exit is checked before this signal sets the flag
            let ok = signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, asked.clone()).is_ok()
                && signal_hook::flag::register_usize(sig, which.clone(), sig as usize).is_ok()
                && signal_hook::flag::register(sig, asked.clone()).is_ok();
            if !ok {
                return None;
            }
        }
        Some(Flags { asked, which })
    });
}

/// The signal that asked the run to stop, if one did.
pub fn stop_requested() -> Option<i32> {
    let flags = FLAGS.get()?.as_ref()?;
    flags.asked.load(Ordering::SeqCst).then(|| flags.which.load(Ordering::SeqCst) as i32)
}

/// Forgets a request (a run handled it; the next run in this process starts clean).
pub fn clear() {
    if let Some(Some(flags)) = FLAGS.get() {
        flags.asked.store(false, Ordering::SeqCst);
    }
}

/// The conventional exit code of a process stopped by `signal`: 130 for SIGINT, 143 for SIGTERM.
pub fn exit_code(signal: i32) -> u8 {
    (128 + signal).clamp(0, 255) as u8
}

/// `SIGINT`, `SIGTERM`.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
