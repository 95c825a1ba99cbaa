//! `cargo xtask up`: the whole chat on this machine, in one command. Builds the page and the
//! binaries (release), runs natter-server on :8000 (and an IRC listener on 127.0.0.1:6667) and
//! natter-bridge on :8080, says how to join, and on Ctrl+C (or SIGTERM) stops both gracefully.
//!
//! With `--tls`: a local CA and a certificate for localhost, 127.0.0.1 and ::1 are made once in
//! `<target>/tls/` (kept for the next run, so a browser told to trust the CA once keeps
//! trusting it); natter-server listens for TLS on :8443 and for IRC over TLS on 127.0.0.1:6697
//! as well, natter-bridge serves the page over https and reaches the server over TLS, and how
//! to trust the CA is printed.
//!
//! With `--cluster`: a nats-server with JetStream on 127.0.0.1:4222 (storing in
//! `<target>/nats/`), and two natter-server nodes in one cluster through it: :8000 and :8001
//! (IRC on :6668), both given to the bridge (without `--tls`), which relays each browser to the
//! one that answers. Users on either node share rooms.
//!
//! Killed (SIGKILL, where no handler runs), `up` takes its services with it: a guard process
//! (`cargo xtask guard`, see `Guard`) watches them and stops them once `up` is gone.
//!
//! natter-server's ports (:8000, :8443, :8001) are on every interface (`0.0.0.0`), as README
//! promises, in plaintext but for :8443: anyone who can reach the machine can connect. `up` says
//! so in one line at start; `--bind 127.0.0.1` keeps them to this machine, and `--bind ::` is
//! every interface over IPv6 and IPv4 (`[::]` and `0.0.0.0`: natter's IPv6 listeners take IPv6
//! only). The bridge and the IRC listeners are on 127.0.0.1 either way.

use crate::{build_release, install, root, target_dir, web};
use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// natter-server's ports, on `--bind`'s address.
const SERVER_PORT: u16 = 8000;
const TLS_SERVER_PORT: u16 = 8443;
/// The second node's natter port under `--cluster`.
const NODE_2_PORT: u16 = 8001;
const BRIDGE: &str = "127.0.0.1:8080";
const IRC: &str = "127.0.0.1:6667";
const IRC_TLS: &str = "127.0.0.1:6697";
const NATS: &str = "127.0.0.1:4222";

/// `cargo xtask up`'s options.
#[derive(Debug, PartialEq, clap::Args)]
pub struct UpArgs {
    /// Also serve TLS: natter-server on :8443 and IRC on 127.0.0.1:6697, the page on
    /// https://localhost:8080/, with a local CA and certificate made once in target/tls/
    #[arg(long, conflicts_with = "cluster")]
    pub tls: bool,
    /// Run a nats-server with JetStream (127.0.0.1:4222) and a second node (:8001, IRC on
    /// 127.0.0.1:6668) in one cluster with the first
    #[arg(long)]
    pub cluster: bool,
    /// The address natter-server's ports listen on: 0.0.0.0 (the default) is every interface,
    /// where anyone who can reach this machine can connect (:: too, over IPv6 and IPv4);
    /// 127.0.0.1 keeps them to this machine
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub bind: IpAddr,
}

/// Where natter-server's ports listen (`bind`) and where this machine reaches them (`here`:
/// loopback when they are on every interface).
struct Ports {
    bind: IpAddr,
    here: IpAddr,
}

impl Ports {
    fn new(bind: IpAddr) -> Ports {
        let here = match bind {
            IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            a => a,
        };
        Ports { bind, here }
    }

    /// The addresses natter-server listens on for `port`: `bind`'s, and for `::` IPv4's
    /// `0.0.0.0` too. natter's IPv6 listeners take IPv6 only (`IPV6_V6ONLY`, see
    /// `natter_ops::listen`): `[::]` alone left IPv4 clients, `127.0.0.1` among them, refused,
    /// under words that said every interface.
    fn listens(&self, port: u16) -> Vec<String> {
        let mut all = vec![SocketAddr::new(self.bind, port).to_string()];
        if self.bind == IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
            all.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port).to_string());
        }
        all
    }

    /// `flag ADDR` for each of [`Ports::listens`].
    fn listen_args(&self, flag: &str, port: u16) -> Vec<String> {
        self.listens(port)
            .into_iter()
            .flat_map(|a| [flag.to_owned(), a])
            .collect()
    }

    fn here(&self, port: u16) -> String {
        SocketAddr::new(self.here, port).to_string()
    }

    /// Who can reach natter-server's ports, and how to change that: one line.
    fn reach_words(&self) -> String {
        let at = self.listens(SERVER_PORT).join(" and ");
        if self.bind.is_unspecified() {
            format!(
                "xtask: natter-server listens on every interface ({at}): anyone who can reach \
                 this machine can connect, in plaintext; --bind 127.0.0.1 keeps it to this machine"
            )
        } else if self.bind.is_loopback() {
            format!("xtask: natter-server listens on {at} only: this machine alone can connect")
        } else {
            format!(
                "xtask: natter-server listens on {at}: whoever can reach that address can \
                 connect, in plaintext; --bind 127.0.0.1 keeps it to this machine"
            )
        }
    }
}

/// The local CA and the certificate it signed, as files.
struct LocalTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// base64 SHA-256 of the certificate's key (Chromium's `--ignore-certificate-errors-spki-list`).
    spki: String,
}

/// The CA and certificate in `dir`, made there the first time. The CA's key is not kept: the
/// CA signs this one certificate and nothing else.
fn local_tls(dir: &Path) -> Result<LocalTls> {
    let files = LocalTls {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        spki: String::new(),
    };
    let spki_file = dir.join("spki-sha256.txt");
    if [&files.ca, &files.cert, &files.key, &spki_file]
        .iter()
        .all(|f| f.is_file())
    {
        let spki = std::fs::read_to_string(&spki_file)
            .with_context(|| format!("reading {}", spki_file.display()))?;
        return Ok(LocalTls {
            spki: spki.trim().to_owned(),
            ..files
        });
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca = natter_tls::dev_ca::DevCa::new("natter local development CA")
        .context("making the local CA")?;
    let leaf = ca
        .leaf(&["localhost", "127.0.0.1", "::1"])
        .context("making the certificate")?;
    leaf.write(dir)
        .with_context(|| format!("writing the certificate into {}", dir.display()))?;
    std::fs::write(&files.ca, ca.cert_pem())
        .with_context(|| format!("writing {}", files.ca.display()))?;
    let spki = leaf.spki_sha256_base64();
    std::fs::write(&spki_file, format!("{spki}\n"))
        .with_context(|| format!("writing {}", spki_file.display()))?;
    println!(
        "xtask: made a local CA and a certificate in {}",
        dir.display()
    );
    Ok(LocalTls { spki, ..files })
}

pub fn up(args: UpArgs) -> Result<()> {
    let UpArgs { tls, cluster, bind } = args;
    let ports = Ports::new(bind);
    let server_here = ports.here(SERVER_PORT);
    let node_2_here = ports.here(NODE_2_PORT);
    // A port already taken (often by a natter left running) is said now, before minutes of
    // building, not as "up" followed by "a service exited": the one listening there answered
    // for the server that could not bind.
    let mut listens = ports.listens(SERVER_PORT);
    listens.extend([IRC.to_owned(), BRIDGE.to_owned()]);
    if tls {
        listens.extend(ports.listens(TLS_SERVER_PORT));
        listens.push(IRC_TLS.to_owned());
    }
    if cluster {
        listens.extend(ports.listens(NODE_2_PORT));
        listens.extend(["127.0.0.1:6668".to_owned(), NATS.to_owned()]);
    }
    ports_free(&listens)?;
    install::wasm_target()?;
    if cluster {
        install::apt_tools()?;
    }
    web()?;
    build_release(&["natter-server", "natter-bridge", "natter"])?;
    let target = target_dir()?;
    let bin = target.join("release");

    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("installing the Ctrl+C handler")?;
    let stop = Stop::new(stop_rx);

    // One secret for the server and the bridge, new every time: the bridge proves itself with
    // it and may then name each browser's address.
    let secret = bridge_secret()?;
    let tls = if tls {
        Some(local_tls(&target.join("tls"))?)
    } else {
        None
    };
    let mut server = Command::new(bin.join("natter-server"));
    server
        .env("NATTER_BRIDGE_SECRET", &secret)
        .args(ports.listen_args("--listen", SERVER_PORT))
        .args(["--irc-listen", IRC]);
    let mut bridge = Command::new(bin.join("natter-bridge"));
    bridge
        .env("NATTER_BRIDGE_SECRET", &secret)
        .args(["--listen", BRIDGE, "--www"])
        .arg(target.join("www"));
    match &tls {
        None => {
            bridge.args(["--server", &server_here]);
        }
        Some(t) => {
            server
                .args(ports.listen_args("--tls-listen", TLS_SERVER_PORT))
                .args(["--irc-tls-listen", IRC_TLS])
                .arg("--tls-cert")
                .arg(&t.cert)
                .arg("--tls-key")
                .arg(&t.key);
            bridge
                .arg("--tls-cert")
                .arg(&t.cert)
                .arg("--tls-key")
                .arg(&t.key)
                .args([
                    "--server",
                    &ports.here(TLS_SERVER_PORT),
                    "--server-name",
                    "localhost",
                    "--server-ca",
                ])
                .arg(&t.ca);
        }
    }
    println!("{}", ports.reach_words());
    // Before the first service: a guard that stops them should `up` itself be killed.
    let mut children = Children::guarded(guard_command()?)?;
    if cluster {
        if let Err(e) = nats(&mut children, &target.join("nats"), &stop) {
            if stop.asked() {
                eprintln!("xtask: stopping");
                return Ok(());
            }
            return Err(e);
        }
        let url = format!("nats://{NATS}");
        // Each node its own data directory (in a cluster only its search index is there): two
        // nodes sharing one each take the other's index for one a stopped node left.
        server
            .args(["--cluster", &url, "--data-dir"])
            .arg(target.join("cluster").join("node-8000"));
        let mut node = Command::new(bin.join("natter-server"));
        node.arg("--data-dir")
            .arg(target.join("cluster").join("node-8001"));
        node.env("NATTER_BRIDGE_SECRET", &secret)
            .args(ports.listen_args("--listen", NODE_2_PORT))
            .args(["--irc-listen", "127.0.0.1:6668", "--cluster", &url]);
        if tls.is_none() {
            // Both nodes for the bridge: a browser whose node goes away comes back on the other.
            bridge.args(["--server", &node_2_here]);
        }
        children.spawn(
            node.current_dir(root()),
            "starting the second natter-server",
        )?;
    }
    children.spawn(server.current_dir(root()), "starting natter-server")?;
    children.spawn(bridge.current_dir(root()), "starting natter-bridge")?;
    // "Up" only once every door accepts connections (a node listens once it has opened its
    // store or joined the cluster: until then a connection is refused, and tried again).
    let mut doors = vec![server_here.as_str(), BRIDGE];
    if cluster {
        doors.push(&node_2_here);
    }
    let waited = wait_listening(&doors, Duration::from_secs(45), || {
        stopped_or_exited(&stop, &mut children)
    });
    if let Err(e) = waited {
        children.stop(Duration::from_secs(10));
        if stop.asked() {
            eprintln!("xtask: stopping");
            return Ok(());
        }
        return Err(e);
    }

    println!();
    println!("natter is up.");
    match &tls {
        None => println!("  browser:   http://{BRIDGE}/"),
        Some(_) => println!("  browser:   https://localhost:8080/"),
    }
    if ports.here.is_loopback() && ports.here.is_ipv4() {
        println!("  terminal:  {}/natter --nick yourname", bin.display());
    } else {
        println!(
            "  terminal:  {}/natter --nick yourname {server_here}",
            bin.display()
        );
    }
    if let Some(t) = &tls {
        println!(
            "             {}/natter --nick yourname --ca-file {} natters://localhost",
            bin.display(),
            t.ca.display()
        );
        println!(
            "  openssl:   openssl s_client -quiet -connect localhost:8443 -CAfile {}",
            t.ca.display()
        );
    }
    let nc_host = ports.here;
    println!("  nc:        nc {nc_host} {SERVER_PORT}   (or: telnet {nc_host} {SERVER_PORT})");
    if cluster {
        println!("  node 2:    nc {nc_host} {NODE_2_PORT}   (IRC: 127.0.0.1:6668); NATS on {NATS}");
        println!(
            "  failover:  {}/natter --nick yourname {server_here},{node_2_here}",
            bin.display()
        );
    }
    println!("  IRC:       irssi -c 127.0.0.1 -p 6667   (any IRC client, {IRC})");
    if let Some(t) = &tls {
        println!(
            "  IRC/TLS:   in irssi: /connect -tls -tls_cafile {} localhost 6697   ({IRC_TLS})",
            t.ca.display()
        );
    }
    if let Some(t) = &tls {
        println!();
        println!("To trust the local CA ({}):", t.ca.display());
        println!(
            "  Chromium/Chrome (Linux): certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n natter-dev -i {}",
            t.ca.display()
        );
        println!(
            "    or Settings > Privacy and security > Security > Manage certificates > Authorities > Import"
        );
        println!(
            "    or for one session: chromium --user-data-dir=/tmp/natter-profile \\\n      --ignore-certificate-errors-spki-list={} https://localhost:8080/",
            t.spki
        );
        println!(
            "  Firefox:   Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import"
        );
        println!(
            "  system (natter --tls, curl): sudo cp {} /usr/local/share/ca-certificates/natter-dev.crt && sudo update-ca-certificates",
            t.ca.display()
        );
        println!(
            "  Delete {} to make a new CA.",
            t.ca.parent().unwrap_or(&t.ca).display()
        );
    }
    println!("Press Ctrl+C to stop.");
    println!();

    loop {
        if stop.wait(Duration::from_millis(500)) {
            eprintln!("xtask: stopping");
            break;
        }
        if let Some(status) = children.any_exited() {
            eprintln!("xtask: a service exited ({status}); stopping the rest");
            break;
        }
    }
    children.stop(Duration::from_secs(10));
    Ok(())
}

/// nats-server with JetStream on [`NATS`], storing in `dir`, one of `children`; waits until it
/// listens.
fn nats(children: &mut Children, dir: &Path, stop: &Stop) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (host, port) = NATS.split_once(':').unwrap_or((NATS, "4222"));
    let mut cmd = Command::new("/usr/sbin/nats-server");
    cmd.args(["-js", "-a", host, "-p", port, "-sd"]).arg(dir);
    spawn_listening(
        children,
        &mut cmd,
        "starting nats-server",
        NATS,
        Duration::from_secs(10),
        stop,
    )
}

/// Ctrl+C (or SIGTERM, SIGHUP) to `up`, as its handler tells it: once asked, asked for good.
struct Stop {
    told: mpsc::Receiver<()>,
    asked: std::cell::Cell<bool>,
}

impl Stop {
    fn new(told: mpsc::Receiver<()>) -> Stop {
        Stop {
            told,
            asked: std::cell::Cell::new(false),
        }
    }

    /// Whether a stop was asked, waiting at most `d` for one.
    fn wait(&self, d: Duration) -> bool {
        if !self.asked.get() && self.told.recv_timeout(d).is_ok() {
            self.asked.set(true);
        }
        self.asked.get()
    }

    /// Whether a stop was asked, now.
    fn asked(&self) -> bool {
        self.wait(Duration::ZERO)
    }
}

/// Why `up` waits no longer for its services to listen: a stop asked, or one that exited.
fn stopped_or_exited(stop: &Stop, children: &mut Children) -> Option<String> {
    if stop.asked() {
        return Some("stopped (Ctrl+C)".to_owned());
    }
    children
        .any_exited()
        .map(|status| format!("a service exited ({status})"))
}

/// Starts `cmd` as one of `children` (`what`: the words of its error) and waits, at most
/// `wait`, until it listens on `addr`. One of them from its spawn: in a group of its own (the
/// terminal's Ctrl+C stopped nats-server at once, under the nodes still shutting down), under
/// the guard while it is waited for, and stopped with the rest if it never listens (it was
/// left running). Ctrl+C ends the wait at once.
fn spawn_listening(
    children: &mut Children,
    cmd: &mut Command,
    what: &'static str,
    addr: &str,
    wait: Duration,
    stop: &Stop,
) -> Result<()> {
    children.spawn_beneath(cmd, what)?;
    wait_listening(&[addr], wait, || stopped_or_exited(stop, children)).context(what)
}

/// Fails, naming the first of `addrs` (listen addresses) something else holds already: a
/// listener, or a natter-server still starting there (its ports are bound, alone, while its
/// store opens). Each is bound as natter-server binds it (`natter_ops::bind`): without address
/// reuse, then, if that fails, with it (a stopped server's connections in TIME_WAIT leave the
/// port to the next start); an IPv6 address for IPv6 only. std's bind, with address reuse
/// alone, found a port free beside a server that had bound it without listening yet.
fn ports_free(addrs: &[String]) -> Result<()> {
    for addr in addrs {
        if let Err(e) = bind_as_the_server(addr) {
            anyhow::bail!(
                "cannot listen on {addr}: {e} (is natter, or something else, running there \
                 already? stop it first)"
            );
        }
    }
    Ok(())
}

/// Binds `addr` as natter-server would (see [`ports_free`]), and lets it go.
fn bind_as_the_server(addr: &str) -> std::io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = || -> std::io::Result<Socket> {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        Ok(s)
    };
    match socket()?.bind(&addr.into()) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let s = socket()?;
            s.set_reuse_address(true)?;
            s.bind(&addr.into())
        }
        other => other,
    }
}

/// Waits until each of `addrs` accepts a connection, at most `wait`; fails sooner if
/// `why_not` says why to wait no longer (a service exited, Ctrl+C: a store's migration may
/// take minutes, and a Ctrl+C meanwhile was seen only once every door listened).
fn wait_listening(
    addrs: &[&str],
    wait: Duration,
    mut why_not: impl FnMut() -> Option<String>,
) -> Result<()> {
    let deadline = Instant::now() + wait;
    for addr in addrs {
        while std::net::TcpStream::connect(addr).is_err() {
            if let Some(why) = why_not() {
                anyhow::bail!("{why} before {addr} answered");
            }
            if Instant::now() > deadline {
                anyhow::bail!("nothing answered on {addr} within {wait:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// The services started; stopped (SIGTERM, then SIGKILL after a grace period) also on error,
/// and by their [`Guard`] if `up` is killed.
struct Children {
    procs: Vec<Child>,
    /// Those the others use (nats-server), stopped once the others have exited.
    beneath: Vec<Child>,
    guard: Option<Guard>,
}

impl Children {
    /// No services yet, and `guard` (a `cargo xtask guard` command) started to watch them.
    fn guarded(guard: Command) -> Result<Children> {
        Ok(Children {
            procs: Vec::new(),
            beneath: Vec::new(),
            guard: Some(Guard::start(guard)?),
        })
    }

    /// No services, and no guard.
    #[cfg(test)]
    fn unguarded() -> Children {
        Children {
            procs: Vec::new(),
            beneath: Vec::new(),
            guard: None,
        }
    }

    /// Starts `cmd` as [`Children::spawn`] does, as a service the others use (nats-server):
    /// [`Children::stop`] stops it once they have exited (a node that stops tells the cluster
    /// it leaves, through NATS).
    fn spawn_beneath(&mut self, cmd: &mut Command, what: &'static str) -> Result<()> {
        let child = Self::start(cmd, what)?;
        if let Some(g) = &mut self.guard {
            g.watch(child.id(), true);
        }
        self.beneath.push(child);
        Ok(())
    }

    /// The status of a service that has exited, reaped now: the guard forgets its pid, which
    /// may be another process's from now on.
    fn any_exited(&mut self) -> Option<std::process::ExitStatus> {
        let (pid, status) = self
            .procs
            .iter_mut()
            .chain(&mut self.beneath)
            .find_map(|c| Some((c.id(), c.try_wait().ok().flatten()?)))?;
        if let Some(g) = &mut self.guard {
            g.forget(pid);
        }
        Some(status)
    }

    /// Starts `cmd` (`what`: the words of its error) in a process group of its own: Ctrl+C
    /// in the terminal reaches `up` alone, and each service hears of the stop once, the
    /// SIGTERM of [`Children::stop`]. In `up`'s group it had the terminal's SIGINT too, and
    /// natter-server takes a second signal during its shutdown for "exit now" (status 143):
    /// its clients were never told it was going away.
    fn spawn(&mut self, cmd: &mut Command, what: &'static str) -> Result<()> {
        let child = Self::start(cmd, what)?;
        // One of the services: stopped with them, and watched by the guard.
        if let Some(g) = &mut self.guard {
            g.watch(child.id(), false);
        }
        self.procs.push(child);
        Ok(())
    }

    /// `cmd` started in a process group of its own (see [`Children::spawn`]).
    fn start(cmd: &mut Command, what: &'static str) -> Result<Child> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0).spawn().context(what)
    }

    /// Stops the services (SIGTERM, SIGKILL after `grace`), then those beneath them (each
    /// with `grace` of their own), and ends the guard.
    fn stop(&mut self, grace: Duration) {
        let above = std::mem::take(&mut self.procs);
        self.stop_these(above, grace);
        let beneath = std::mem::take(&mut self.beneath);
        self.stop_these(beneath, grace);
        if let Some(g) = self.guard.take() {
            g.end();
        }
    }

    fn stop_these(&mut self, mut procs: Vec<Child>, grace: Duration) {
        for c in &mut procs {
            // One reaped already (`any_exited`) is not signalled: its pid may be another
            // process's by now.
            if let Ok(Some(_)) = c.try_wait() {
                continue;
            }
            // SIGTERM lets each service tell its clients and flush: the one signal it gets
            // (see `spawn`). A direct call, not the `kill` program: one process, never a group.
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        for c in &mut procs {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
            // Reaped: its pid may be another process's from now on.
            if let Some(g) = &mut self.guard {
                g.forget(c.id());
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// How `up` runs its guard: this program, `cargo xtask guard`.
fn guard_command() -> Result<Command> {
    let me = std::env::current_exe().context("finding the xtask program for its guard")?;
    let mut cmd = Command::new(me);
    cmd.arg("guard");
    Ok(cmd)
}

/// A process that stops `up`'s services if `up` ends without stopping them: killed (SIGKILL,
/// the OOM killer), where no handler of its own runs, they ran on, each in a group of its own,
/// holding the ports the next `up` wanted. `up` writes each service's pid and start time to
/// the guard's stdin (`PID START`, and `-PID` once it has reaped it); the pipe closes when `up`
/// exits however it does, and the guard then sends SIGTERM to the pids left (SIGKILL after
/// 10 s), each only while the process with that pid is the one that started then (see
/// [`started`]): a pid is given to a new process once its own has been reaped. Safe code
/// only (no `pre_exec` for PR_SET_PDEATHSIG), and nats-server is covered as well. A service
/// is unguarded only between its spawn and the write of its pid.
struct Guard {
    child: Child,
    tell: Option<std::process::ChildStdin>,
}

impl Guard {
    /// Starts `cmd` as the guard, in a group of its own (the terminal's Ctrl+C is `up`'s).
    fn start(mut cmd: Command) -> Result<Guard> {
        use std::os::unix::process::CommandExt;
        let mut child = cmd
            .process_group(0)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting the guard of the services (cargo xtask guard)")?;
        let tell = child.stdin.take();
        Ok(Guard { child, tell })
    }

    fn say(&mut self, line: &str) {
        use std::io::Write;
        if let Some(t) = &mut self.tell
            && writeln!(t, "{line}").and_then(|()| t.flush()).is_err()
        {
            eprintln!("xtask: the guard of the services is gone; they stop with up only on Ctrl+C");
            self.tell = None;
        }
    }

    /// Tells the guard of a service: `beneath`, one the others use (nats-server), which the
    /// guard stops once the others have exited, as [`Children::stop`] does.
    fn watch(&mut self, pid: u32, beneath: bool) {
        // The child is not reaped before `up` waits for it: the start time is its own.
        match i32::try_from(pid).ok().and_then(started) {
            Some(start) if beneath => self.say(&format!("{pid} {start} {BENEATH}")),
            Some(start) => self.say(&format!("{pid} {start}")),
            None => eprintln!("xtask: process {pid} ended as it started; not guarded"),
        }
    }

    fn forget(&mut self, pid: u32) {
        self.say(&format!("-{pid}"));
    }

    /// Closes the pipe (nothing is left to stop) and waits for the guard to exit.
    fn end(mut self) {
        drop(self.tell.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long the guard gives the services it stops to exit before SIGKILL (the services, and
/// then those beneath them, each this long).
const GUARD_GRACE: Duration = Duration::from_secs(10);

/// The word after a service's pid and start time that makes it one the others use
/// (nats-server): the guard stops it once they have exited.
const BENEATH: &str = "beneath";

/// `cargo xtask guard` (hidden; started by `up`): reads the services to watch on stdin
/// (`PID START`, `PID START beneath` for one the others use, and `-PID` for one `up` has
/// reaped) until it closes, then stops those left as `up` would: SIGTERM, and SIGKILL to those
/// still running after [`GUARD_GRACE`]; those beneath only once the others have exited (a
/// node that stops tells the cluster it leaves, through NATS: stopped with the nodes,
/// nats-server was gone before they could).
pub fn guard() -> Result<()> {
    guard_from(std::io::stdin().lock(), GUARD_GRACE)
}

/// [`guard`], reading `said`, with `grace` before SIGKILL. A process is signalled only while
/// its pid and start time are those `up` said: one that exited and was reaped (by `up`, or by
/// init once `up` is gone) may have left its pid to an unrelated process.
fn guard_from(said: impl std::io::BufRead, grace: Duration) -> Result<()> {
    use std::io::Write;
    // Each pid, with its start time and whether the others use it.
    let mut pids = std::collections::BTreeMap::new();
    for line in said.lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        let (pid, start) = match line.strip_prefix('-') {
            Some(p) => (p, None),
            None => {
                let mut words = line.split_whitespace();
                let (Some(p), Some(Ok(start))) =
                    (words.next(), words.next().map(str::parse::<u64>))
                else {
                    continue;
                };
                (p, Some((start, words.next() == Some(BENEATH))))
            }
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        if pid <= 0 {
            // Never a group, never every process.
            continue;
        }
        match start {
            Some(start) => pids.insert(pid, start),
            None => pids.remove(&pid),
        };
    }
    if pids.is_empty() {
        return Ok(());
    }
    // Said if it can be: with up's terminal closed, or the pipe its stderr was read from, the
    // write fails, and `eprintln!` panicked on it before any service was stopped.
    let _ = writeln!(
        std::io::stderr(),
        "xtask guard: cargo xtask up is gone without stopping its services; stopping {} of them",
        pids.len()
    );
    // The services first, then those beneath them.
    for beneath in [false, true] {
        let ours = |(&pid, &(start, b)): (&i32, &(u64, bool))| {
            (b == beneath && started(pid) == Some(start)).then_some(pid)
        };
        for pid in pids.iter().filter_map(ours) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && pids.iter().filter_map(ours).next().is_some() {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in pids.iter().filter_map(ours) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    Ok(())
}

/// When process `pid` started (`/proc/PID/stat`'s 22nd field, in clock ticks after boot), if
/// it runs (exists and is not a zombie waiting to be reaped). With the pid, it tells a process
/// from a later one given the same pid.
fn started(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields follow the command's name in parentheses, which may hold anything: the
    // state (the 3rd field) first.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether process `pid` runs (exists and is not a zombie waiting to be reaped).
#[cfg(test)]
fn running(pid: i32) -> bool {
    started(pid).is_some()
}

/// A fresh random bridge secret (hex of 24 bytes from the kernel's random source).
fn bridge_secret() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for the bridge secret")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_waits_for_every_door_and_says_which_did_not_answer() {
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open_addr = open.local_addr().unwrap().to_string();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        assert!(wait_listening(&[&open_addr], Duration::from_secs(1), || None).is_ok());
        let err = wait_listening(
            &[&open_addr, &closed_addr],
            Duration::from_millis(300),
            || None,
        )
        .unwrap_err();
        assert!(err.to_string().contains(&closed_addr), "{err}");
    }

    /// A port something listens on already is said before anything starts (a natter left
    /// running answered for the new one, which could not bind: "up", then "a service exited").
    #[test]
    fn up_refuses_a_port_taken_before_it_builds_anything() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken_addr = taken.local_addr().unwrap().to_string();
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let free_addr = free.local_addr().unwrap().to_string();
        drop(free);
        assert!(ports_free(std::slice::from_ref(&free_addr)).is_ok());
        let err = ports_free(&[free_addr, taken_addr.clone()]).unwrap_err();
        assert!(err.to_string().contains(&taken_addr), "{err}");
        assert!(err.to_string().contains("running there already"), "{err}");
    }

    /// A port in TIME_WAIT after a listener that served a connection closed: the connection
    /// closed first on the listener's side.
    fn port_in_time_wait() -> std::net::SocketAddr {
        use std::io::Read;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        drop(l.accept().unwrap());
        drop(l);
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
        drop(client);
        std::thread::sleep(Duration::from_millis(50));
        addr
    }

    /// `up` checks its ports as natter-server binds them: one a server still starting has bound
    /// (it listens once its store is open) is taken, and one where only a stopped server's
    /// connections wait in TIME_WAIT is free (the server binds it).
    #[test]
    fn up_finds_its_ports_as_the_server_will() {
        let starting = natter_ops::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = starting.local_addr().unwrap().to_string();
        let err = ports_free(std::slice::from_ref(&addr)).unwrap_err();
        assert!(err.to_string().contains(&addr), "{err}");
        drop(starting);
        assert!(ports_free(std::slice::from_ref(&addr)).is_ok());

        let waiting = port_in_time_wait();
        let addr = waiting.to_string();
        assert!(
            ports_free(std::slice::from_ref(&addr)).is_ok(),
            "TIME_WAIT only"
        );
        // A server starting there (bound beside the TIME_WAIT) takes it.
        let starting = natter_ops::bind(waiting).unwrap();
        let err = ports_free(std::slice::from_ref(&addr)).unwrap_err();
        assert!(err.to_string().contains("running there already"), "{err}");
        drop(starting);
    }

    /// Each service is in a process group of its own, so that the terminal's Ctrl+C (sent to
    /// the foreground group) does not reach it besides `up`'s SIGTERM: two signals make
    /// natter-server exit at once, skipping its graceful shutdown.
    #[test]
    fn up_starts_each_service_in_a_group_of_its_own() {
        let mut children = Children::unguarded();
        children
            .spawn(Command::new("sleep").arg("30"), "starting sleep")
            .unwrap();
        let pid = Pid::from_raw(i32::try_from(children.procs[0].id()).unwrap());
        let group = nix::unistd::getpgid(Some(pid)).unwrap();
        let ours = nix::unistd::getpgid(None).unwrap();
        children.stop(Duration::from_secs(5));
        assert_eq!(group, pid, "a group of its own");
        assert_ne!(group, ours);
    }

    /// The guard signals a pid only while the process there is the one `up` gave it: a service
    /// that exited and was reaped leaves its pid to the next process the kernel starts, which
    /// the guard (SIGTERM, then SIGKILL after its grace) would otherwise have stopped. Here
    /// `other` stands for that process: the guard has its pid with another start time.
    #[test]
    fn the_guard_stops_its_services_and_not_a_process_that_took_a_pid() {
        use std::os::unix::process::ExitStatusExt;
        let mut service = Command::new("sleep").arg("30").spawn().unwrap();
        let mut other = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = |c: &Child| i32::try_from(c.id()).unwrap();
        let start = started(pid(&service)).expect("the service's start time");
        let other_start = started(pid(&other)).expect("the other's start time");
        let said = format!(
            "{} {start}\n{} {}\n",
            pid(&service),
            pid(&other),
            other_start + 1
        );
        guard_from(said.as_bytes(), Duration::from_secs(5)).unwrap();
        let left = other.try_wait().unwrap();
        let _ = other.kill();
        let _ = other.wait();
        assert_eq!(left, None, "the guard signalled a process it was not given");
        let status = service.wait().unwrap();
        assert_eq!(status.signal(), Some(15), "{status:?}");
    }

    /// A service waited for (nats-server) is one of the services from its spawn: in a group of
    /// its own, and stopped with them when it does not listen in time.
    #[test]
    fn a_service_that_does_not_listen_in_time_is_stopped_with_the_rest() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let mut children = Children::unguarded();
        let err = spawn_listening(
            &mut children,
            Command::new("sleep").arg("30"),
            "starting sleep",
            &addr,
            Duration::from_millis(300),
            &Stop::new(mpsc::channel().1),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("starting sleep"), "{err:#}");
        assert_eq!(children.beneath.len(), 1, "not one of the services");
        let pid = Pid::from_raw(i32::try_from(children.beneath[0].id()).unwrap());
        let group = nix::unistd::getpgid(Some(pid)).unwrap();
        assert_ne!(group, nix::unistd::getpgid(None).unwrap());
        let raw = pid.as_raw();
        drop(children);
        assert!(!running(raw), "still running once the services are stopped");
    }

    /// Ctrl+C while a service starts (a store's migration may take minutes) ends `up`'s wait at
    /// once; it was seen only once every door listened, or the wait had timed out.
    #[test]
    fn ctrl_c_while_a_service_starts_ends_the_wait() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let mut children = Children::unguarded();
        let (tx, rx) = mpsc::channel();
        let stop = Stop::new(rx);
        tx.send(()).unwrap();
        let began = Instant::now();
        let err = spawn_listening(
            &mut children,
            Command::new("sleep").arg("30"),
            "starting sleep",
            &addr,
            Duration::from_secs(20),
            &stop,
        )
        .unwrap_err();
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "waited {:?} after Ctrl+C",
            began.elapsed()
        );
        assert!(format!("{err:#}").contains("Ctrl+C"), "{err:#}");
        assert!(stop.asked(), "asked for good");
        children.stop(Duration::from_secs(5));
    }

    /// A service the others use (nats-server: a node that stops tells the cluster it leaves)
    /// gets its SIGTERM once they have exited; it had it with them, and was gone before they
    /// could say they left.
    #[test]
    fn a_service_the_others_use_stops_after_them() {
        let seen = std::env::temp_dir().join(format!("xtask-beneath-{}", std::process::id()));
        let _ = std::fs::remove_file(&seen);
        let mut children = Children::unguarded();
        children
            .spawn_beneath(Command::new("sleep").arg("30"), "starting sleep")
            .unwrap();
        let beneath = children.beneath[0].id();
        // On SIGTERM it says whether the one beneath still runs.
        let script = format!(
            "trap 'if grep -q \"^State:[[:space:]]*[RS]\" /proc/{beneath}/status; \
             then echo alive > {f}; else echo gone > {f}; fi; exit 0' TERM; \
             while :; do sleep 0.05; done",
            f = seen.display()
        );
        children
            .spawn(Command::new("sh").args(["-c", &script]), "starting sh")
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        children.stop(Duration::from_secs(5));
        let said = std::fs::read_to_string(&seen).unwrap_or_default();
        let _ = std::fs::remove_file(&seen);
        assert_eq!(said.trim(), "alive");
        assert!(!running(i32::try_from(beneath).unwrap()));
    }

    /// The guard, when `up` was killed, stops the services the others use (nats-server) once
    /// the others have exited, as `up` itself does: it stopped them all at once, and nats-server
    /// was gone before the nodes could tell the cluster they left.
    #[test]
    fn the_guard_stops_a_service_the_others_use_after_them() {
        let seen = std::env::temp_dir().join(format!("xtask-guard-beneath-{}", std::process::id()));
        let _ = std::fs::remove_file(&seen);
        let mut beneath = Command::new("sleep").arg("30").spawn().unwrap();
        let below = beneath.id();
        // On SIGTERM it says whether the one beneath still runs, after a moment (a node's
        // shutdown takes one).
        let script = format!(
            "trap 'sleep 0.3; if grep -q \"^State:[[:space:]]*[RS]\" /proc/{below}/status; \
             then echo alive > {f}; else echo gone > {f}; fi; exit 0' TERM; \
             while :; do sleep 0.05; done",
            f = seen.display()
        );
        let mut above = Command::new("sh").args(["-c", &script]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let pid = |c: &Child| i32::try_from(c.id()).unwrap();
        let said = format!(
            "{} {} {BENEATH}\n{} {}\n",
            pid(&beneath),
            started(pid(&beneath)).unwrap(),
            pid(&above),
            started(pid(&above)).unwrap(),
        );
        guard_from(said.as_bytes(), Duration::from_secs(5)).unwrap();
        let above_status = above.wait().unwrap();
        let _ = beneath.kill();
        let beneath_status = beneath.wait().unwrap();
        let said = std::fs::read_to_string(&seen).unwrap_or_default();
        let _ = std::fs::remove_file(&seen);
        assert_eq!(said.trim(), "alive", "{above_status:?}");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(beneath_status.signal(), Some(15), "{beneath_status:?}");
    }

    /// The environment variable that gives this test binary, run again by the tests below, the
    /// part it plays: `up` (services under a guard) or `guard`.
    const ROLE: &str = "XTASK_TEST_ROLE";

    /// This test binary again, running [`role`] as `role`.
    fn as_role(role: &str) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "up::tests::role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role);
        cmd
    }

    /// Nothing on its own; what [`as_role`] runs: `up`'s services (a `sleep`) under a guard,
    /// their pids printed, stopped as `up` stops them (`up-stops`) or left for a SIGKILL
    /// (`up`); or the guard itself.
    #[test]
    fn role() {
        let role = std::env::var(ROLE).unwrap_or_default();
        match role.as_str() {
            "guard" => guard().unwrap(),
            "up" | "up-stops" => {
                let mut children = Children::guarded(as_role("guard")).unwrap();
                children
                    .spawn(Command::new("sleep").arg("60"), "starting sleep")
                    .unwrap();
                let guard = children.guard.as_ref().unwrap().child.id();
                println!("service {} guard {guard}", children.procs[0].id());
                if role == "up-stops" {
                    children.stop(Duration::from_secs(5));
                    println!("stopped");
                }
                std::thread::sleep(Duration::from_secs(60));
            }
            _ => {}
        }
    }

    /// Waits (at most 15 s) until `pid` no longer runs.
    fn gone(pid: i32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while running(pid) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// `up` in `role`, and the pids of its service and guard from what it prints.
    fn start_up(
        role: &str,
    ) -> (
        Child,
        i32,
        i32,
        std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    ) {
        use std::io::BufRead;
        let mut up = as_role(role)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(up.stdout.take().unwrap()).lines();
        let said = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split_once("service ").map(|(_, w)| w.to_owned()))
            .expect("up prints its service's pid");
        // After libtest's `test up::tests::role ... ` on the same line.
        let words: Vec<&str> = said.split_whitespace().collect();
        (
            up,
            words[0].parse().unwrap(),
            words[2].parse().unwrap(),
            lines,
        )
    }

    /// The guard stops the services when its stderr is gone too (a closed terminal, a pipe
    /// whose reader ended): `eprintln!` panicked on the failed write, before any signal.
    #[test]
    fn the_guard_stops_the_services_with_nowhere_to_say_so() {
        use std::io::Write;
        let mut service = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = i32::try_from(service.id()).unwrap();
        let start = started(pid).unwrap();
        let mut guard = as_role("guard")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(guard.stderr.take());
        let mut tell = guard.stdin.take().unwrap();
        writeln!(tell, "{pid} {start}").unwrap();
        drop(tell);
        let deadline = Instant::now() + Duration::from_secs(15);
        let ended = loop {
            if let Some(status) = service.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if ended.is_none() {
            let _ = service.kill();
            let _ = service.wait();
        }
        let _ = guard.kill();
        let _ = guard.wait();
        assert!(ended.is_some(), "the guard did not stop the service");
    }

    /// `cargo xtask up` killed (SIGKILL: no handler runs) takes its services with it: they ran
    /// on, each in a group of its own, holding the ports the next `up` wants.
    #[test]
    fn up_killed_takes_its_services_with_it() {
        let (mut up, service, guard_pid, _lines) = start_up("up");
        assert!(running(service));
        // By its pid, never a group.
        kill(
            Pid::from_raw(i32::try_from(up.id()).unwrap()),
            Signal::SIGKILL,
        )
        .unwrap();
        let _ = up.wait();
        let stopped = gone(service);
        if !stopped {
            let _ = kill(Pid::from_raw(service), Signal::SIGKILL);
        }
        assert!(stopped, "the service runs on after up was killed");
        assert!(gone(guard_pid), "the guard exits after stopping them");
    }

    /// Stopped by `up` itself, the services are not signalled again by the guard (their pids
    /// may be other processes' by then), and the guard exits.
    #[test]
    fn up_stopping_its_services_ends_the_guard() {
        let (mut up, service, guard_pid, mut lines) = start_up("up-stops");
        let stopped = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("stopped"));
        assert!(stopped);
        assert!(!running(service));
        assert!(
            gone(guard_pid),
            "the guard exits once up has stopped everything"
        );
        let _ = up.kill();
        let _ = up.wait();
    }

    /// `up` says who can reach natter-server, and how to keep it local when everyone can.
    #[test]
    fn up_says_who_can_reach_the_server() {
        let every = Ports::new("0.0.0.0".parse().unwrap());
        assert_eq!(every.listens(SERVER_PORT), ["0.0.0.0:8000"]);
        assert_eq!(every.here(SERVER_PORT), "127.0.0.1:8000");
        let words = every.reach_words();
        assert!(words.contains("every interface (0.0.0.0:8000)"), "{words}");
        assert!(words.contains("--bind 127.0.0.1"), "{words}");
        assert!(!words.contains('\n'), "one line: {words}");
        let local = Ports::new("127.0.0.1".parse().unwrap());
        assert!(local.reach_words().contains("this machine alone"));
        let v6 = Ports::new("::".parse().unwrap());
        assert_eq!(v6.listens(SERVER_PORT), ["[::]:8000", "0.0.0.0:8000"]);
        assert_eq!(
            v6.listen_args("--listen", SERVER_PORT),
            ["--listen", "[::]:8000", "--listen", "0.0.0.0:8000"]
        );
        assert_eq!(v6.here(SERVER_PORT), "[::1]:8000");
        let words = v6.reach_words();
        assert!(
            words.contains("every interface ([::]:8000 and 0.0.0.0:8000)"),
            "{words}"
        );
        let one_v6 = Ports::new("::1".parse().unwrap());
        assert_eq!(one_v6.listens(SERVER_PORT), ["[::1]:8000"]);
        let lan = Ports::new("192.0.2.7".parse().unwrap());
        assert_eq!(lan.here(NODE_2_PORT), "192.0.2.7:8001");
        assert!(lan.reach_words().contains("--bind 127.0.0.1"));
    }

    /// `--bind ::` says every interface, and is: natter-server, listening as it does
    /// (`natter_ops::listen`, IPv6 for IPv6 only) on what `up` gives it, takes IPv4 clients as
    /// well as IPv6 ones. Given `[::]` alone, it refused every IPv4 client, 127.0.0.1 too.
    #[test]
    fn bind_everywhere_on_ipv6_takes_ipv4_clients_too() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let ports = Ports::new("::".parse().unwrap());
            // A free port on both: taken by the OS for IPv6, then asked of IPv4 too.
            let (_held, port) = (0..20)
                .find_map(|_| {
                    let l = natter_ops::listen("[::]:0".parse().unwrap()).ok()?;
                    let port = l.local_addr().ok()?.port();
                    let rest: Vec<_> = ports.listens(port)[1..]
                        .iter()
                        .map(|a| natter_ops::listen(a.parse().unwrap()))
                        .collect::<Result<_, _>>()
                        .ok()?;
                    Some(((l, rest), port))
                })
                .expect("a port free for IPv6 and IPv4");
            for client in ["127.0.0.1", "[::1]"] {
                let addr = format!("{client}:{port}");
                let c = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio::net::TcpStream::connect(&addr),
                )
                .await
                .expect("connects in time");
                assert!(c.is_ok(), "{addr}: {c:?}");
            }
        });
    }

    #[test]
    fn the_local_ca_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("natter-xtask-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = local_tls(&dir).unwrap();
        let cert = std::fs::read_to_string(&first.cert).unwrap();
        assert!(cert.contains("BEGIN CERTIFICATE"));
        assert_eq!(first.spki.len(), 44, "{}", first.spki);
        let again = local_tls(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(&again.cert).unwrap(), cert, "kept");
        assert_eq!(again.spki, first.spki);
        // The certificate verifies against the CA written beside it.
        let trust = natter_tls::Trust::CaFile(first.ca.clone());
        assert!(natter_tls::client_config(&trust).is_ok());
        assert!(natter_tls::ServerTls::load(&first.cert, &first.key).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
