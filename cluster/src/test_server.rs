//! A real nats-server with JetStream for tests (feature `test-server`): on a free port of
//! 127.0.0.1, storing in a temporary directory of its own, stopped by its pid (never its
//! process group) when dropped; and natter-server nodes joined to it, as processes.
//! `cargo xtask test` installs Debian's `nats-server`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long nats-server may take to listen, or to exit when stopped.
const WAIT: Duration = Duration::from_secs(20);

/// A nats-server process (see the module's documentation).
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// Its flags for the credentials it requires (`--user U --pass P`, `--auth TOKEN`, or
    /// `-c` and an operator's config), if any.
    auth: Vec<String>,
    /// Files its flags name (an operator's config), kept for its life.
    kept: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// Starts one and waits until it accepts connections.
    ///
    /// # Panics
    /// If no port or directory can be had, or nats-server does not run or listen in time:
    /// a test cannot go on without it.
    pub fn start() -> NatsServer {
        Self::start_as(Vec::new())
    }

    /// Starts one that admits only `user` with `password`, as [`NatsServer::start`].
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn start_with_user(user: &str, password: &str) -> NatsServer {
        Self::start_as(vec![
            "--user".into(),
            user.into(),
            "--pass".into(),
            password.into(),
        ])
    }

    /// Starts one that admits only clients with `token` (`nats-server --auth`), as
    /// [`NatsServer::start`].
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn start_with_token(token: &str) -> NatsServer {
        Self::start_as(vec!["--auth".into(), token.into()])
    }

    /// Starts one in operator mode (NATS's decentralized auth, as `nsc` sets it up, with the
    /// accounts' JWTs preloaded): a system account, and one account with JetStream whose one
    /// user's credentials file (its JWT and NKey seed) is returned, as `nsc generate creds`
    /// writes it. As [`NatsServer::start`] otherwise.
    ///
    /// # Panics
    /// As [`NatsServer::start`], or if a key cannot be made or used.
    #[cfg(feature = "test-server")]
    pub fn start_with_creds() -> (NatsServer, String) {
        use nkeys::KeyPair;
        let operator = KeyPair::new_operator();
        let system = KeyPair::new_account();
        let account = KeyPair::new_account();
        let user = KeyPair::new_user();
        let unlimited = r#""subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,"conn":-1,"leaf":-1"#;
        let operator_jwt = jwt(
            &operator,
            &operator.public_key(),
            "natter-test",
            &format!(
                r#"{{"system_account":"{}","type":"operator","version":2}}"#,
                system.public_key()
            ),
        );
        let account_claims = |js: &str| {
            format!(
                r#"{{"limits":{{{unlimited}{js}}},"default_permissions":{{"pub":{{}},"sub":{{}}}},"type":"account","version":2}}"#
            )
        };
        let system_jwt = jwt(&operator, &system.public_key(), "SYS", &account_claims(""));
        let account_jwt = jwt(
            &operator,
            &account.public_key(),
            "natter",
            &account_claims(r#","mem_storage":-1,"disk_storage":-1,"streams":-1,"consumer":-1"#),
        );
        let user_jwt = jwt(
            &account,
            &user.public_key(),
            "natter",
            r#"{"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1,"type":"user","version":2}"#,
        );
        let kept = tempfile::tempdir().expect("a temporary directory");
        let conf = kept.path().join("operator.conf");
        std::fs::write(
            &conf,
            format!(
                "operator: {operator_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
                 resolver_preload: {{\n  {sys}: {system_jwt}\n  {acc}: {account_jwt}\n}}\n",
                sys = system.public_key(),
                acc = account.public_key(),
            ),
        )
        .expect("write the operator's config");
        let seed = user.seed().expect("the user's seed");
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        );
        let conf = conf.to_str().expect("a UTF-8 path").to_owned();
        let mut nats = Self::start_as(vec!["-c".into(), conf]);
        nats.kept = Some(kept);
        (nats, creds)
    }

    fn start_as(auth: Vec<String>) -> NatsServer {
        let mut nats = NatsServer {
            child: None,
            port: 0,
            dir: tempfile::tempdir().expect("a temporary directory"),
            auth,
            kept: None,
        };
        // A free port: bound by the OS, then let go for nats-server to take. Something else
        // may take it in between (another test's connection or server): nats-server then
        // exits, and another free port is tried.
        for _ in 0..PORT_TRIES {
            nats.port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            if nats.try_run() {
                return nats;
            }
        }
        panic!("nats-server did not listen on any of {PORT_TRIES} free ports");
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
        assert!(
            self.try_run(),
            "nats-server did not listen on its port again"
        );
    }

    /// Starts nats-server on `self.port` and waits until it listens there: false if it exited
    /// first (the port was taken) or was not ready in time. Only this child's own "ready"
    /// counts: before, a connection accepted by whatever else held the port passed.
    fn try_run(&mut self) -> bool {
        // A fresh log each run: "ready" in it is this run's.
        let _ = std::fs::remove_file(self.log());
        let child = Command::new(Self::bin())
            .args(&self.auth)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .arg("-l")
            .arg(self.log())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (cargo xtask test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() >= deadline {
                if let Some(mut c) = self.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return false;
            }
            // Its own log says it is ready (listening on its port), and it answers there.
            let ready =
                std::fs::read_to_string(self.log()).is_ok_and(|l| l.contains("Server is ready"));
            if ready && TcpStream::connect(self.addr()).is_ok() {
                return true;
            }
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

    /// Its log file, beside its store.
    fn log(&self) -> PathBuf {
        self.dir.path().join("nats.log")
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

/// A JWT of NATS's decentralized auth: `nats` as its claims' `nats` part, for `subject`, signed
/// by `issuer` (an operator for an account, an account for a user).
#[cfg(feature = "test-server")]
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = b64.encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = b64.encode(format!(
        r#"{{"jti":"{name}{subject}","iat":{iat},"iss":"{}","name":"{name}","sub":"{subject}","nats":{nats}}}"#,
        issuer.public_key()
    ));
    let signed = format!("{header}.{claims}");
    let signature = issuer.sign(signed.as_bytes()).expect("an nkey signs");
    format!("{signed}.{}", b64.encode(signature))
}

/// Free ports tried before [`NatsServer::start`] gives up.
const PORT_TRIES: usize = 5;

/// A natter-server node process joined to a [`NatsServer`] (memory-only, on a free port of
/// 127.0.0.1), killed when dropped; a test can `kill -9` it with [`NodeProcess::kill`].
pub struct NodeProcess {
    child: tokio::process::Child,
    /// natter's door.
    pub addr: SocketAddr,
}

impl NodeProcess {
    /// Starts `bin` (a built natter-server) with `envs` set, in the cluster at `nats`; returns
    /// once it listens.
    ///
    /// # Panics
    /// If the node does not start or listen in time.
    pub async fn start(bin: &Path, nats: &NatsServer, envs: &[(&str, &str)]) -> NodeProcess {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--cluster", &nats.url()])
            .env("RUST_LOG", "info")
            .env_remove("NATTER_LISTEN")
            .env_remove("NATTER_CONFIG")
            .env_remove("NATTER_DATA_DIR")
            .env_remove("NATTER_CLUSTER")
            .env("NATTER_EPHEMERAL", "true")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("natter-server starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut log = tokio::io::BufReader::new(stderr).lines();
        let addr = tokio::time::timeout(WAIT, async {
            loop {
                let line = log
                    .next_line()
                    .await
                    .expect("read the node's log")
                    .expect("the node exited before listening");
                if line.contains("listening")
                    && let Some(a) = line.split("addr=").nth(1)
                {
                    let a = a.split_whitespace().next().unwrap_or_default();
                    return a.parse::<SocketAddr>().expect("an address in the log line");
                }
            }
        })
        .await
        .expect("the node listens in time");
        // The rest of the log is read and dropped, so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
        NodeProcess { child, addr }
    }

    /// `kill -9`: the node dies at once, without a word to anyone.
    ///
    /// # Panics
    /// If it does not exit in time.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL the node");
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the killed node exits")
            .expect("wait for the node");
    }
}
