//! glibc's allocator, tuned for a server whose memory is mostly small long-lived objects made in
//! bursts (a crowd connecting). Its per-size caches of freed small chunks (fastbins up to 128
//! bytes, never merged with their neighbours, and the per-thread tcache) keep what a burst freed
//! out of reach of later allocations of other sizes, so the heap grows instead: with both off,
//! 5,000 idle connections hold ~100 bytes less each, at no cost measured in fan-out
//! (bench/README.md, "fourteenth session"). They are set with `GLIBC_TUNABLES`, which glibc
//! reads only when a process starts: natter-server sets it and executes itself again, once,
//! before anything else runs. An operator's own `GLIBC_TUNABLES` is kept as it is.
//!
//! The new image is started through `/proc/self/exe`, so the kernel names the process `exe`;
//! it takes its own name back (what `ps`, `top`, `pgrep natter-server` and `pkill` go by).

use std::ffi::OsString;

/// The tunables natter-server runs with unless the operator set their own.
pub(crate) const TUNABLES: &str = "glibc.malloc.mxfast=0:glibc.malloc.tcache_count=0";

/// What [`reexec`] did, for the log once it is set up.
#[derive(Debug)]
pub(crate) enum Tuned {
    /// Running with natter's tunables, or the operator's.
    Yes,
    /// Not glibc on Linux: nothing to tune.
    NotGlibc,
    /// The new image could not be started; glibc's defaults stay.
    Failed(std::io::Error),
}

/// Executes this binary again with [`TUNABLES`] if `GLIBC_TUNABLES` is not set; returns only
/// when it is set already (or on failure, or off glibc).
pub(crate) fn reexec() -> Tuned {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return Tuned::NotGlibc;
    }
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        take_back_name();
        return Tuned::Yes;
    }
    Tuned::Failed(exec_self(std::env::args_os().collect()))
}

fn exec_self(mut args: Vec<OsString>) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let arg0 = if args.is_empty() {
        OsString::from("natter-server")
    } else {
        args.remove(0)
    };
    // The running binary itself, also when it was replaced on disk since it started.
    std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", TUNABLES)
        .exec()
}

/// Names the process after its `argv[0]` again (the kernel's name for a process is the file name
/// it was executed as, `exe` after [`exec_self`]), as a start without the second exec would
/// have it. On the main thread before any other exists: the process's name is the main
/// thread's. Harmless when it was not executed again: the name is the same.
#[cfg(target_os = "linux")]
fn take_back_name() {
    use std::os::unix::ffi::OsStrExt;
    let Some(arg0) = std::env::args_os().next() else {
        return;
    };
    let name = std::path::Path::new(&arg0)
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    // The kernel keeps 15 bytes; a name with a NUL cannot be given (nor could it be the file's).
    if let Ok(name) = std::ffi::CString::new(name)
        && !name.as_bytes().is_empty()
    {
        // Only the name in `ps` is at stake: a failure leaves `exe`.
        let _ = nix::sys::prctl::set_name(&name);
    }
}

#[cfg(not(target_os = "linux"))]
fn take_back_name() {}
