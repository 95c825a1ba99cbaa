//! A real nats-server with JetStream for tests (feature `test-server`): on a free port of
//! 127.0.0.1, storing in a temporary directory of its own, stopped by its pid (never its
//! process group) when dropped. `cargo xtask test` installs Debian's `nats-server`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long nats-server may take to listen, or to exit when stopped.
const WAIT: Duration = Duration::from_secs(20);

/// A nats-server process (see the module's documentation).
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts one and waits until it accepts connections.
    ///
    /// # Panics
    /// If no port or directory can be had, or nats-server does not run or listen in time:
    /// a test cannot go on without it.
    pub fn start() -> NatsServer {
        // A free port: bound by the OS, then let go for nats-server to take.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut nats = NatsServer {
            child: None,
            port,
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        nats.run();
        nats
    }

    /// The binary: Debian installs it in /usr/sbin, which is not on every user's PATH.
    pub fn bin() -> PathBuf {
        let sbin = PathBuf::from("/usr/sbin/nats-server");
        if sbin.exists() {
            sbin
        } else {
            PathBuf::from("nats-server")
        }
    }

    /// Starts the server again after [`NatsServer::stop`] (same port, same store), and waits
    /// until it accepts connections.
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn run(&mut self) {
        let child = Command::new(Self::bin())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (cargo xtask test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(self.addr()).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM to its pid, SIGKILL if it lingers) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + WAIT;
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its URL, for `--cluster`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
