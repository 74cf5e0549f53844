//! A panic in an actor or a checker is a finding, not the end of a search: the run that panicked
//! becomes a violation named `panic` (its seed or tape replays it), and the search goes on.
//!
//! `catch` runs a closure under `catch_unwind`. While it runs, this thread's panics are not
//! printed by the default hook (a search may hit the same panic in thousands of runs); the
//! message and its source location are kept for the violation instead. Panics elsewhere print as
//! usual. The hook is installed once per process; it changes what is printed, never a result.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// The invariant a run that panicked violates.
pub const PANIC: &str = "panic";

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.get() {
                let at = info.location().map_or(String::new(), |l| format!(" (at {}:{})", l.file(), l.line()));
                LAST.set(Some(format!("{}{at}", payload_text(info.payload()))));
            } else {
                default(info);
            }
        }));
    });
}

fn payload_text(p: &(dyn std::any::Any + Send)) -> String {
    match (p.downcast_ref::<&str>(), p.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic with a non-text payload".to_string(),
    }
}

/// Run `f`; if it panics, its message and location instead of its result.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was = QUIET.replace(true);
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.set(was);
    r.map_err(|p| LAST.take().unwrap_or_else(|| payload_text(&*p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_with_its_message_and_location() {
        assert_eq!(catch(|| 7), Ok(7));
        let e = catch(|| -> u32 { panic!("boom {}", 42) }).unwrap_err();
        assert!(e.starts_with("boom 42 (at ") && e.contains("panics.rs"), "{e}");
    }
}
