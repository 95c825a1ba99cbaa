//! SQLite's memory from mimalloc instead of the C library's `malloc`.
//!
//! natter-server runs glibc with its small-chunk caches off (`native-server/src/malloc_tune.rs`:
//! idle connections cost less memory that way). SQLite's search index and writer allocate and
//! free many small chunks (FTS5's pending terms: one allocation per new term, all freed at each
//! step), and without those caches every `free` merges chunks under the arena's lock
//! (bench/README.md, "SQLite's memory from mimalloc"). SQLite takes its allocator from
//! `sqlite3_config(SQLITE_CONFIG_MALLOC, …)`, once, before it is first used; this crate gives it
//! mimalloc's, whose frees go to the freeing thread's own page without a lock. Only SQLite's
//! memory moves: Rust's allocations stay with glibc.
//!
//! The workspace forbids unsafe code; this crate is the one exception, kept to the FFI call and
//! the five callbacks SQLite makes, each a direct call of mimalloc's C API.

use libmimalloc_sys as mi;
use libsqlite3_sys as ffi;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

/// mimalloc 2's options `eager_commit` and `arena_eager_commit` (`mimalloc.h`'s `mi_option_e`,
/// where libmimalloc-sys names neither). Off, mimalloc commits a segment's memory a page at a
/// time as it is used instead of all at once: the server's peak RSS under a C=50 flood of the
/// store was 59 MB against 76 MB with them on (51 MB with glibc), at the same CPU
/// (bench/README.md). Purging freed pages at once (`purge_delay` 0) saved another 3 MB and
/// cost the index thread 5-9 % of its CPU in `madvise`, so that one keeps its default.
const MI_OPTION_EAGER_COMMIT: mi::mi_option_t = 3;
const MI_OPTION_ARENA_EAGER_COMMIT: mi::mi_option_t = 4;

/// Why SQLite kept its own allocator.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// SQLite was already in use in this process when [`install`] was first called (its
    /// allocator can only be chosen before it starts): nothing changes, nothing is wrong.
    #[error(
        "SQLite was initialized before its allocator could be set (code {0}); it keeps its own"
    )]
    TooLate(c_int),
}

/// Makes SQLite allocate through mimalloc, if SQLite has not started yet in this process. The
/// first call decides; later calls return what it did.
pub fn install() -> Result<(), Error> {
    static DONE: OnceLock<Result<(), Error>> = OnceLock::new();
    DONE.get_or_init(|| {
        for option in [MI_OPTION_EAGER_COMMIT, MI_OPTION_ARENA_EAGER_COMMIT] {
            // SAFETY: sets a default that the environment (`MIMALLOC_*`) still overrides; not
            // thread safe, and nothing else uses mimalloc before SQLite does (this is before).
            unsafe { mi::mi_option_set_default(option, 0) };
        }
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLITE_CONFIG_MALLOC takes one pointer to a `sqlite3_mem_methods`, which
        // SQLite copies before returning; the callbacks are plain functions that live as long
        // as the program. SQLite refuses the call (SQLITE_MISUSE) once it is initialized, and
        // then changes nothing.
        let rc = unsafe {
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_MALLOC,
                &methods as *const ffi::sqlite3_mem_methods,
            )
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(Error::TooLate(rc))
        }
    })
    .clone()
}

fn size(n: c_int) -> usize {
    usize::try_from(n).unwrap_or(0)
}

fn to_c_int(n: usize) -> c_int {
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    // SAFETY: any size is valid for mi_malloc (0 gives a unique pointer); null on failure, which
    // SQLite handles as out of memory.
    unsafe { mi::mi_malloc(size(n)) }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    // SAFETY: SQLite frees only what x_malloc or x_realloc gave it (or null).
    unsafe { mi::mi_free(p) }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SAFETY: `p` came from x_malloc or x_realloc; on failure mi_realloc returns null and leaves
    // `p` as it was, as SQLite expects of realloc.
    unsafe { mi::mi_realloc(p, size(n)) }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    // SAFETY: `p` came from x_malloc or x_realloc (SQLite asks only of its own allocations).
    to_c_int(unsafe { mi::mi_usable_size(p) })
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    // SAFETY: a pure function of its argument.
    to_c_int(unsafe { mi::mi_good_size(size(n)) })
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_allocates_through_mimalloc_once_installed() {
        assert_eq!(install(), Ok(()));
        // SAFETY: a plain allocation through SQLite's API, freed below.
        let p = unsafe { ffi::sqlite3_malloc(100) };
        assert!(!p.is_null());
        // mimalloc knows the pointer as its own: its usable size is what SQLite reports.
        // SAFETY: `p` is a live allocation of SQLite's, i.e. of mimalloc's now.
        let (mi_size, sqlite_size) = unsafe { (mi::mi_usable_size(p), ffi::sqlite3_msize(p)) };
        assert!(mi_size >= 100);
        assert_eq!(mi_size as u64, sqlite_size);
        // SAFETY: `p` came from sqlite3_malloc.
        unsafe { ffi::sqlite3_free(p) };
        // The second call answers as the first did.
        assert_eq!(install(), Ok(()));
        if std::env::var_os("MIMALLOC_EAGER_COMMIT").is_none() {
            // SAFETY: reads an option.
            assert_eq!(unsafe { mi::mi_option_get(MI_OPTION_EAGER_COMMIT) }, 0);
        }
    }

    #[test]
    fn sizes_clamp_instead_of_wrapping() {
        assert_eq!(size(-1), 0);
        assert_eq!(to_c_int(usize::MAX), c_int::MAX);
    }
}
