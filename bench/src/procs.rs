//! Servers under test as child processes, pinned to a CPU with `taskset`, each with its own log
//! file; and what `/proc` says about a process (CPU time, resident memory).

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use thiserror::Error;

/// How long a server gets to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a server process could not be started or read.
#[derive(Debug, Error)]
pub enum ProcError {
    /// The binary is not there.
    #[error(
        "{0} not found: build it first (cargo build --release -p natter-server -p natter-bridge)"
    )]
    Missing(PathBuf),
    /// Spawning or reading failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// It did not say where it listens in time.
    #[error("{name} did not report its address within {secs} s (log: {log})")]
    NoAddress {
        /// Which server.
        name: String,
        /// Waited.
        secs: u64,
        /// Its log file.
        log: String,
    },
    /// A `/proc` file did not have the expected shape.
    #[error("cannot parse {0}")]
    Parse(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProcError {
    let what = what.into();
    move |source| ProcError::Io { what, source }
}

/// A running server process; killed when dropped.
#[derive(Debug)]
pub struct ServerProc {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
}

impl ServerProc {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `bin args...` (under `taskset -c cpu` if given), logging to `log`, and waits for
    /// a log line containing `marker` followed by the listening address.
    pub fn spawn(
        name: &str,
        bin: &Path,
        args: &[String],
        env: &[(&str, &str)],
        cpu: Option<usize>,
        log: PathBuf,
        marker: &str,
    ) -> Result<ServerProc, ProcError> {
        if !bin.is_file() {
            return Err(ProcError::Missing(bin.to_owned()));
        }
        let out = File::create(&log).map_err(io(format!("create {}", log.display())))?;
        let err = out.try_clone().map_err(io("dup log file"))?;
        let mut cmd = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(io(format!("start {}", bin.display())))?;
        let mut proc = ServerProc {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            let text = std::fs::read_to_string(&proc.log).unwrap_or_default();
            if let Some(addr) = find_addr(&text, marker) {
                proc.addr = addr;
                return Ok(proc);
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Err(ProcError::Io {
                    what: format!("{name} exited with {status}; log: {}", proc.log.display()),
                    source: std::io::Error::other("early exit"),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(ProcError::NoAddress {
            name: name.to_owned(),
            secs: START_TIMEOUT.as_secs(),
            log: proc.log.display().to_string(),
        })
    }

    /// Starts `bin args...` (under `taskset -c cpu` if given), logging to `log`, and waits
    /// until it accepts connections on `addr` (for servers that do not log a port they chose).
    pub fn spawn_listening(
        name: &str,
        bin: &Path,
        args: &[String],
        cpu: Option<usize>,
        log: PathBuf,
        addr: SocketAddr,
    ) -> Result<ServerProc, ProcError> {
        if !bin.is_file() {
            return Err(ProcError::Missing(bin.to_owned()));
        }
        let out = File::create(&log).map_err(io(format!("create {}", log.display())))?;
        let err = out.try_clone().map_err(io("dup log file"))?;
        let mut cmd = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .map_err(io(format!("start {}", bin.display())))?;
        let mut proc = ServerProc { child, addr, log };
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(proc);
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Err(ProcError::Io {
                    what: format!("{name} exited with {status}; log: {}", proc.log.display()),
                    source: std::io::Error::other("early exit"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(ProcError::NoAddress {
            name: name.to_owned(),
            secs: START_TIMEOUT.as_secs(),
            log: proc.log.display().to_string(),
        })
    }

    /// The address in its log after `marker` (e.g. a second listener's), if it logged one.
    pub fn logged_addr(&self, marker: &str) -> Option<SocketAddr> {
        find_addr(&std::fs::read_to_string(&self.log).ok()?, marker)
    }

    /// CPU seconds (user + system) used so far.
    pub fn cpu_seconds(&self) -> Result<f64, ProcError> {
        cpu_seconds(self.pid())
    }

    /// Peak resident memory (VmHWM), bytes.
    pub fn peak_rss(&self) -> Result<u64, ProcError> {
        status_kib(self.pid(), "VmHWM:").map(|k| k * 1024)
    }

    /// Resident memory now (VmRSS), bytes.
    pub fn rss(&self) -> Result<u64, ProcError> {
        status_kib(self.pid(), "VmRSS:").map(|k| k * 1024)
    }

    /// Resident anonymous memory now (RssAnon: the heap, stacks; not the pages of the binary
    /// and libraries read in as their code first runs), bytes.
    pub fn rss_anon(&self) -> Result<u64, ProcError> {
        status_kib(self.pid(), "RssAnon:").map(|k| k * 1024)
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first address after `marker` in `text` (e.g. `listening addr=127.0.0.1:4000`).
fn find_addr(text: &str, marker: &str) -> Option<SocketAddr> {
    let at = text.find(marker)? + marker.len();
    let rest = &text[at..];
    let token: String = rest
        .chars()
        .skip_while(|c| !c.is_ascii_digit() && *c != '[')
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    token.parse().ok()
}

/// Clock ticks per second for `/proc/*/stat` times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// CPU seconds (utime + stime) of process `pid`, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> Result<f64, ProcError> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(io(format!("read {path}")))?;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| ProcError::Parse(path.clone()))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<f64, ProcError> {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| ProcError::Parse(path.clone()))
    };
    Ok((field(11)? + field(12)?) / clock_ticks())
}

/// A `kB` line of `/proc/PID/status`.
fn status_kib(pid: u32, key: &str) -> Result<u64, ProcError> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(io(format!("read {path}")))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ProcError::Parse(format!("{path} {key}")))
}

/// Sets this process's niceness to `n` (negative: ahead of others; needs root or
/// `CAP_SYS_NICE`).
pub fn renice_self(n: i32) -> Result<(), ProcError> {
    let status = Command::new("renice")
        .args(["-n", &n.to_string(), "-p", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(io("run renice"))?;
    if status.success() {
        Ok(())
    } else {
        Err(ProcError::Io {
            what: "renice".into(),
            source: std::io::Error::other(status.to_string()),
        })
    }
}

/// Puts this process under the real-time FIFO policy at `priority` (needs root or
/// `CAP_SYS_NICE`; the kernel still leaves other work 5 % of each second).
pub fn realtime_self(priority: u8) -> Result<(), ProcError> {
    let status = Command::new("chrt")
        .args([
            "--fifo",
            "-p",
            &priority.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .map_err(io("run chrt"))?;
    if status.success() {
        Ok(())
    } else {
        Err(ProcError::Io {
            what: "chrt".into(),
            source: std::io::Error::other(status.to_string()),
        })
    }
}

/// Pins every thread of this process to `cpu` (before the runtime starts more threads).
pub fn pin_self(cpu: usize) -> Result<(), ProcError> {
    let status = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .map_err(io("run taskset"))?;
    if status.success() {
        Ok(())
    } else {
        Err(ProcError::Io {
            what: "taskset".into(),
            source: std::io::Error::other(status.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_addresses_in_log_lines() {
        let l =
            "2026-11-25T17:00:00Z  INFO natter_server::server: listening addr=127.0.0.1:41234\n";
        assert_eq!(
            find_addr(l, "listening"),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        let l = "natter-bridge: open http://127.0.0.1:8080/\n";
        assert_eq!(
            find_addr(l, "open http://"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(find_addr("listening soon", "listening"), None);
    }

    #[test]
    fn reads_own_proc_files() {
        let me = std::process::id();
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(status_kib(me, "VmHWM:").unwrap() > 0);
        assert!(status_kib(me, "VmRSS:").unwrap() > 0);
    }
}
