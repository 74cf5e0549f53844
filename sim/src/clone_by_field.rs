//! `Clone` with a `clone_from` that keeps buffers.
//!
//! The exhaustive search restores a snapshot of the simulator before most runs
//! (`Sim::clone_from`). A derived `Clone` has the default `clone_from`, `*self = src.clone()`:
//! every `Vec` of every actor, log and queue is freed and allocated again, and the first push
//! after it reallocates (a clone has no spare capacity). That was a quarter of a search's time
//! in malloc, free and realloc. Cloning field by field into the existing value keeps each
//! buffer (`Vec::clone_from` reuses its allocation and clones element by element).

/// Implements `Clone` for a struct by listing its fields: `clone` builds the struct literal
/// (so a field left out or listed twice does not compile) and `clone_from` clones each field
/// into the existing one. A generic struct names its parameters and bounds after the fields:
/// `clone_by_field!(Log<R> { records, synced, written } where R: Clone)`.
///
/// ```
/// #[derive(Debug, PartialEq)]
/// struct Rows { ids: Vec<u32>, next: u32 }
/// sim::clone_by_field!(Rows { ids, next });
/// let mut a = Rows { ids: Vec::with_capacity(64), next: 0 };
/// a.clone_from(&Rows { ids: vec![1, 2], next: 3 });
/// assert_eq!(a, Rows { ids: vec![1, 2], next: 3 });
/// assert!(a.ids.capacity() >= 64, "the buffer was kept");
/// ```
#[macro_export]
macro_rules! clone_by_field {
    ($t:ident $(< $($g:ident),+ >)? { $($f:ident),* $(,)? } $(where $($w:tt)+)?) => {
        impl $(<$($g),+>)? ::core::clone::Clone for $t $(<$($g),+>)? $(where $($w)+)? {
            fn clone(&self) -> Self {
                $t { $($f: ::core::clone::Clone::clone(&self.$f)),* }
            }
            fn clone_from(&mut self, src: &Self) {
                $(::core::clone::Clone::clone_from(&mut self.$f, &src.$f);)*
            }
        }
    };
}
