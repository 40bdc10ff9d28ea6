//! Harness of the end-to-end tests (issue 6): network namespaces joined by veth pairs, a
//! real ipsecd in each, captures and the tools that check them.
//!
//! ```text
//!  Lab::new ──► temp dir + unique namespace names (ironswan-e2e-<pid>-<n>-<tag>)
//!    ├─ Lab::ns("a") ──► Ns: `ip netns add`, lo up; run/spawn commands inside
//!    ├─ veth(a, "va", b, "vb") + Ns::addr
//!    ├─ Daemon::start(lab, ns, keys, policy) ──► `ip netns exec NS ipsecd --tun ipsec0 ...`
//!    ├─ Capture::start(lab, ns, iface) ──► tcpdump -U -w, ready at "listening on"
//!    └─ Drop: daemons and captures stop first, then every namespace is deleted (its
//!             remaining processes killed), even when the test panics
//! ```
//!
//! Every test creates its own namespaces, so tests run in parallel. They need root:
//! [`Lab::new`] returns `None` (after saying so) otherwise, and the test returns. A failing
//! test keeps its directory (captures, logs) and says where; `IRONSWAN_E2E_KEEP=1` keeps
//! it always.
//!
//! Include it with `#[path = "common/netns.rs"] mod netns;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ipsec_sys::seqpacket::{Conn, Recv, Sent};
use ipsec_sys::{PollFd, PollFlags};

/// The daemon under test: ipsecd's own tests know its path from Cargo; other crates'
/// end-to-end tests (in.ikev2d's) take the ipsecd built next to their test binary
/// (`target/<profile>/ipsecd`; scripts/test.sh builds every binary first).
pub fn ipsecd_bin() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_ipsecd") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("ipsecd");
    assert!(
        p.exists(),
        "{} is missing: build it first with `cargo build -p ipsecd`",
        p.display()
    );
    p
}
/// The Python interpreter of the TCP and UDP helpers.
pub const PYTHON: &str = "/usr/bin/python3";
/// ipsecd's default routing table (0x1500).
pub const ROUTE_TABLE: &str = "5376";

static NEXT_LAB: AtomicU32 = AtomicU32::new(1);

/// One test's world: its temporary directory and namespaces, all removed on drop.
pub struct Lab {
    /// The test's name (messages).
    pub test: String,
    /// Files of this test (sockets, keys, policies, captures, logs).
    pub dir: PathBuf,
    prefix: String,
    namespaces: Mutex<Vec<String>>,
}

impl Lab {
    /// A new lab, or `None` (the test should return) when not running as root.
    pub fn new(test: &str) -> Option<Self> {
        if ipsec_sys::geteuid() != 0 {
            eprintln!("skipping {test}: the end-to-end tests need root (network namespaces)");
            return None;
        }
        let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("ironswan-e2e-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        Some(Self {
            test: test.to_string(),
            dir,
            prefix,
            namespaces: Mutex::new(Vec::new()),
        })
    }

    /// Creates the namespace `<prefix>-<tag>` with its loopback up.
    pub fn ns(&self, tag: &str) -> Ns {
        let name = format!("{}-{tag}", self.prefix);
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        self.namespaces.lock().unwrap().push(name.clone());
        let ns = Ns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Writes `text` to a file of the lab (mode 0600: keys files hold keys).
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        p
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.namespaces.lock().unwrap_or_else(|e| e.into_inner()));
        for name in names.iter().rev() {
            // Whatever still runs inside (a helper a failing test left) was started by
            // this test: the namespace is ours alone.
            if let Ok(o) = Command::new("ip").args(["netns", "pids", name]).output() {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let mut deleted = false;
            for _ in 0..20 {
                let st = Command::new("ip")
                    .args(["netns", "del", name])
                    .stderr(Stdio::null())
                    .status();
                if st.is_ok_and(|s| s.success()) {
                    deleted = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !deleted {
                eprintln!("{}: could not delete namespace {name}", self.test);
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "{}: failed; its files are kept in {}",
                self.test,
                self.dir.display()
            );
        } else if std::env::var_os("IRONSWAN_E2E_KEEP").is_some() {
            eprintln!("{}: files kept in {}", self.test, self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `cmd` and panics (with its output) unless it succeeds; its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A network namespace of a [`Lab`] (the lab deletes it).
#[derive(Clone, Debug)]
pub struct Ns {
    /// Its name.
    pub name: String,
}

impl Ns {
    /// A command run inside the namespace.
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, prog]);
        c
    }

    /// Runs `args` inside; the output, whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs `args` inside; must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        run_ok(self.cmd(args[0]).args(&args[1..]))
    }

    /// `ip -n NS args`; must succeed.
    pub fn ip(&self, args: &[&str]) -> String {
        run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Adds `cidr` to `iface` (IPv6 without duplicate address detection) and brings it up.
    pub fn addr(&self, iface: &str, cidr: &str) {
        if cidr.contains(':') {
            self.ip(&["addr", "add", cidr, "dev", iface, "nodad"]);
        } else {
            self.ip(&["addr", "add", cidr, "dev", iface]);
        }
        self.ip(&["link", "set", iface, "up"]);
    }

    /// Sets a sysctl inside.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.ok(&["sysctl", "-qw", &format!("{key}={value}")]);
    }

    /// A router: forwarding on for both families.
    pub fn forwarding(&self) {
        self.sysctl("net.ipv4.ip_forward", "1");
        self.sysctl("net.ipv6.conf.all.forwarding", "1");
    }

    /// `ping -c count` to `dst` (0.2 s apart, 2 s wait for the last reply); the output.
    pub fn ping(&self, dst: &str, count: u32) -> Output {
        self.run(&[
            "ping",
            "-n",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "2",
            dst,
        ])
    }

    /// Pings `dst` `count` times; every reply must come back.
    pub fn ping_ok(&self, dst: &str, count: u32) {
        let o = self.ping(dst, count);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains(&format!("{count} received")),
            "ping {dst} from {}: {}\n{out}{}",
            self.name,
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Starts `args` inside as a [`Proc`] (stdout and stderr collected).
    pub fn spawn(&self, args: &[&str]) -> Proc {
        Proc::spawn(self.cmd(args[0]).args(&args[1..]), &args.join(" "))
    }

    /// Starts a Python helper script inside.
    pub fn python(&self, script: &str, args: &[&str]) -> Proc {
        let mut all = vec![PYTHON, "-u", "-c", script];
        all.extend_from_slice(args);
        self.spawn(&all)
    }

    /// The routes of ipsecd's table, both families (a family whose table does not exist
    /// has none).
    pub fn table_routes(&self) -> String {
        let mut s = String::new();
        for fam in ["-4", "-6"] {
            let o = Command::new("ip")
                .args(["-n", &self.name, fam, "route", "show", "table", ROUTE_TABLE])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            s.push_str(&String::from_utf8_lossy(&o.stdout));
        }
        s
    }
}

/// Joins `a`'s `a_if` and `b`'s `b_if` with a veth pair.
pub fn veth(a: &Ns, a_if: &str, b: &Ns, b_if: &str) {
    run_ok(Command::new("ip").args([
        "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]));
}

/// Addresses of the two hosts of [`two_hosts`] and [`veth_pair`] (IPv4 and IPv6).
pub const A4: &str = "10.0.0.1";
pub const B4: &str = "10.0.0.2";
pub const A6: &str = "2001:db8::1";
pub const B6: &str = "2001:db8::2";
/// AES-128-GCM keys (16 bytes + 4-byte salt) of the SAs from A to B and from B to A.
pub const GCM_AB: &str = "0102030405060708090a0b0c0d0e0f1011121314";
pub const GCM_BA: &str = "1112131415161718191a1b1c1d1e1f2021222324";

/// AES-128-CBC keys and HMAC-SHA-256 keys of the SAs from A to B and from B to A.
pub const CBC_AB: &str = "2122232425262728292a2b2c2d2e2f30";
pub const CBC_BA: &str = "3132333435363738393a3b3c3d3e3f40";
pub const SHA_AB: &str = "4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60";
pub const SHA_BA: &str = "6162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80";

/// Two namespaces `a` and `b` joined by veth `va`—`vb` with the given addresses.
pub fn veth_pair(lab: &Lab, a_cidr: &str, b_cidr: &str) -> (Ns, Ns) {
    let a = lab.ns("a");
    let b = lab.ns("b");
    veth(&a, "va", &b, "vb");
    a.addr("va", a_cidr);
    b.addr("vb", b_cidr);
    (a, b)
}

/// [`veth_pair`] with [`A4`]/24 and [`B4`]/24.
pub fn two_hosts(lab: &Lab) -> (Ns, Ns) {
    veth_pair(lab, &format!("{A4}/24"), &format!("{B4}/24"))
}

/// ipseckey lines of an AES-GCM ESP SA pair between [`A4`] and [`B4`]: SPI `spi` from A to
/// B with [`GCM_AB`], `spi + 1` back with [`GCM_BA`]; `extra` (e.g. `encap udp`), if not
/// empty, goes after the addresses of both.
pub fn gcm_keys(spi: u32, extra: &str) -> String {
    let x = if extra.is_empty() {
        String::new()
    } else {
        format!(" {extra}")
    };
    format!(
        "add esp spi {spi:#x} src {A4} dst {B4}{x} encr_alg aes-gcm encrkey {GCM_AB}\n\
         add esp spi {:#x} src {B4} dst {A4}{x} encr_alg aes-gcm encrkey {GCM_BA}\n",
        spi + 1
    )
}

/// ipseckey lines of an ESP SA pair with AES-CBC and HMAC-SHA-256 between `a` and `b`: SPI
/// `spi` from `a` to `b` with [`CBC_AB`] and [`SHA_AB`], `spi + 1` back with [`CBC_BA`] and
/// [`SHA_BA`].
pub fn cbc_sha256_keys(spi: u32, a: &str, b: &str) -> String {
    format!(
        "add esp spi {spi:#x} src {a} dst {b} encr_alg aes-cbc encrkey {CBC_AB} \
             auth_alg sha256 authkey {SHA_AB}\n\
         add esp spi {:#x} src {b} dst {a} encr_alg aes-cbc encrkey {CBC_BA} \
             auth_alg sha256 authkey {SHA_BA}\n",
        spi + 1
    )
}

/// ipsecconf line of a transport-mode policy of host `local` towards `remote`, protected
/// with `props` (e.g. `encr_algs aes-gcm`) and shared SAs.
pub fn transport_policy(local: &str, remote: &str, props: &str) -> String {
    format!("{{laddr {local} raddr {remote}}} ipsec {{{props} sa shared}}\n")
}

/// Sends `sig` (TERM, INT, KILL ...) to process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

// ---------------------------------------------------------------------------------------
// Processes.

#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    closed: usize,
}

/// A child process whose stdout and stderr lines are collected; killed on drop.
pub struct Proc {
    child: Option<Child>,
    what: String,
    out: Arc<(Mutex<Lines>, Condvar)>,
    err: Arc<(Mutex<Lines>, Condvar)>,
}

fn collect(r: impl Read + Send + 'static) -> Arc<(Mutex<Lines>, Condvar)> {
    let shared = Arc::new((Mutex::new(Lines::default()), Condvar::new()));
    let s2 = Arc::clone(&shared);
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            s2.0.lock().unwrap().lines.push(line);
            s2.1.notify_all();
        }
        s2.0.lock().unwrap().closed += 1;
        s2.1.notify_all();
    });
    shared
}

fn wait_line(
    shared: &(Mutex<Lines>, Condvar),
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<String> {
    let t0 = Instant::now();
    let mut g = shared.0.lock().unwrap();
    loop {
        if let Some(l) = g.lines.iter().find(|l| pred(l)) {
            return Some(l.clone());
        }
        let left = timeout.saturating_sub(t0.elapsed());
        if left.is_zero() || g.closed > 0 {
            return None;
        }
        g = shared.1.wait_timeout(g, left).unwrap().0;
    }
}

impl Proc {
    /// Spawns `cmd` (stdin closed, stdout and stderr collected).
    pub fn spawn(cmd: &mut Command, what: &str) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        Self {
            child: Some(child),
            what: what.to_string(),
            out,
            err,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Waits for a stdout line satisfying `pred`; panics after `timeout`.
    pub fn wait_stdout(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        wait_line(&self.out, timeout, pred).unwrap_or_else(|| {
            panic!(
                "{}: expected line not seen within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.what,
                self.stdout().join("\n"),
                self.stderr().join("\n")
            )
        })
    }

    /// Waits for a stderr line satisfying `pred`; `None` after `timeout` or at the end.
    pub fn wait_stderr(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        wait_line(&self.err, timeout, pred)
    }

    /// Stdout lines so far.
    pub fn stdout(&self) -> Vec<String> {
        self.out.0.lock().unwrap().lines.clone()
    }

    /// Stderr lines so far.
    pub fn stderr(&self) -> Vec<String> {
        self.err.0.lock().unwrap().lines.clone()
    }

    /// Waits for the process to exit (panics after `timeout`); its status and stdout.
    pub fn finish(&mut self, timeout: Duration) -> (ExitStatus, Vec<String>) {
        let st = self.wait_exit(timeout).unwrap_or_else(|| {
            panic!(
                "{} still running after {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.what,
                self.stdout().join("\n"),
                self.stderr().join("\n")
            )
        });
        // Both pipes end with the process.
        for shared in [&self.out, &self.err] {
            let t0 = Instant::now();
            let mut g = shared.0.lock().unwrap();
            while g.closed == 0 && t0.elapsed() < Duration::from_secs(2) {
                g = shared
                    .1
                    .wait_timeout(g, Duration::from_millis(50))
                    .unwrap()
                    .0;
            }
        }
        (st, self.stdout())
    }

    /// Waits for the exit; `None` after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Some(st);
            }
            if t0.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the exit; must succeed; the stdout lines.
    pub fn success(&mut self, timeout: Duration) -> Vec<String> {
        let (st, out) = self.finish(timeout);
        assert!(
            st.success(),
            "{}: {st}\nstdout:\n{}\nstderr:\n{}",
            self.what,
            out.join("\n"),
            self.stderr().join("\n")
        );
        out
    }

    /// Sends a signal.
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            signal(c.id(), sig);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The daemon.

/// An ipsecd running the data plane (`--tun ipsec0`) inside a namespace, with its keys and
/// policy files, sockets and log in the lab directory. Stopped (TERM, then KILL) on drop;
/// its log is printed when the test fails.
pub struct Daemon {
    ns: Ns,
    child: Option<Child>,
    args: Vec<String>,
    /// The PF_KEY socket.
    pub pfkey: PathBuf,
    /// The control socket.
    pub control: PathBuf,
    /// The log (stderr).
    pub log: PathBuf,
    /// The keys file.
    pub keys: PathBuf,
    /// The policy file.
    pub policy: PathBuf,
}

impl Daemon {
    /// Starts ipsecd in `ns` with an ipseckey(8) file holding `keys` and an ipsecconf(8)
    /// file holding `policy`, and waits until its control socket answers and its policy
    /// routes are installed. `name` names its files.
    pub fn start(lab: &Lab, ns: &Ns, name: &str, keys: &str, policy: &str) -> Self {
        Self::start_with(lab, ns, name, keys, policy, &[])
    }

    /// [`start`](Self::start) with more arguments.
    pub fn start_with(
        lab: &Lab,
        ns: &Ns,
        name: &str,
        keys: &str,
        policy: &str,
        extra: &[&str],
    ) -> Self {
        let keys_file = lab.file(&format!("{name}.keys"), keys);
        let policy_file = lab.file(&format!("{name}.policy"), policy);
        let pfkey = lab.dir.join(format!("{name}.pfkey"));
        let control = lab.dir.join(format!("{name}.control"));
        let log = lab.dir.join(format!("{name}.log"));
        let mut args: Vec<String> = vec![
            "--pfkey-socket".into(),
            pfkey.display().to_string(),
            "--control-socket".into(),
            control.display().to_string(),
            "--keys-file".into(),
            keys_file.display().to_string(),
            "--policy-file".into(),
            policy_file.display().to_string(),
            "--tun".into(),
            "ipsec0".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut d = Self {
            ns: ns.clone(),
            child: None,
            args,
            pfkey,
            control,
            log,
            keys: keys_file,
            policy: policy_file,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none());
        let _ = fs::remove_file(&self.control);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = self
            .ns
            .cmd(ipsecd_bin().to_str().unwrap())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "ipsecd in {} exited at start ({st}):\n{}",
                    self.ns.name,
                    self.log_text()
                );
            }
            if self.control.exists() && self.try_control("counters").is_some() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "ipsecd in {} did not come up:\n{}",
                self.ns.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // The data-plane thread installs the policy routes on its first turn.
        while !self.ns.table_routes().contains("ipsec0") {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "ipsecd in {} installed no route into ipsec0:\n{}",
                self.ns.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id (`ip netns exec` execs ipsecd in place).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Kills the daemon with SIGKILL (no cleanup) and reaps it.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        signal(c.id(), "KILL");
        let _ = c.wait();
    }

    /// Stops the daemon with SIGTERM (clean shutdown) and waits; its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut c = self.child.take().unwrap();
        signal(c.id(), "TERM");
        let t0 = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            if t0.elapsed() > Duration::from_secs(5) {
                let _ = c.kill();
                let _ = c.wait();
                panic!("ipsecd in {} ignored SIGTERM", self.ns.name);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the daemon again with the same files (after [`kill9`](Self::kill9) or
    /// [`stop`](Self::stop)).
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn try_control(&self, request: &str) -> Option<String> {
        let c = Conn::connect(&self.control).ok()?;
        control_request(&c, request)
    }

    /// One control-socket request; the reply.
    pub fn control(&self, request: &str) -> String {
        self.try_control(request)
            .unwrap_or_else(|| panic!("control request {request:?} to {} failed", self.ns.name))
    }

    /// The data-plane counters and per-SA statistics (`counters`, what ipsecstat shows).
    pub fn counters(&self) -> Counters {
        let r = self.control("counters");
        Counters::parse(&r).unwrap_or_else(|| panic!("counters reply: {r}"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "TERM");
            let t0 = Instant::now();
            while c.try_wait().ok().flatten().is_none() && t0.elapsed() < Duration::from_secs(3) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- ipsecd log of {} ({}) ----\n{}---- end of log ----",
                self.ns.name,
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// Sends one request on `c`; the reply text (`None` on any failure or after 5 s).
pub fn control_request(c: &Conn, request: &str) -> Option<String> {
    if c.send(request.as_bytes()).ok()? != Sent::Done {
        return None;
    }
    let mut fds = [PollFd::new(c, PollFlags::IN)];
    if ipsec_sys::poll(&mut fds, Some(Duration::from_secs(5))).ok()? == 0 {
        return None;
    }
    let mut buf = vec![0u8; 1 << 20];
    match c.recv(&mut buf).ok()? {
        Recv::Msg(n) => Some(String::from_utf8_lossy(buf.get(..n)?).into_owned()),
        _ => None,
    }
}

/// Per-SA statistics from the `counters` reply.
#[derive(Clone, Debug, Default)]
pub struct SaStat {
    /// `esp` or `ah`.
    pub proto: String,
    /// The SPI.
    pub spi: u32,
    /// Source (`*` when unspecified).
    pub src: String,
    /// Destination.
    pub dst: String,
    /// Packets processed.
    pub packets: u64,
    /// Bytes processed.
    pub bytes: u64,
    /// Drops by reason.
    pub drops: BTreeMap<String, u64>,
}

/// The `counters` reply: data-plane counters, per-SA statistics, global drops.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Data-plane counters by name (tun_in, out_protected, ..., drop reasons).
    pub plane: BTreeMap<String, u64>,
    /// Per SA.
    pub sas: Vec<SaStat>,
    /// Engine drops not tied to an SA.
    pub drops: BTreeMap<String, u64>,
}

impl Counters {
    /// Parses the reply (`None` unless it starts with `ok`).
    pub fn parse(reply: &str) -> Option<Self> {
        let body = reply.strip_prefix("ok\n")?;
        let mut c = Self::default();
        for line in body.lines() {
            if let Some(sa) = line.strip_prefix("sa ") {
                let w: Vec<&str> = sa.split_whitespace().collect();
                let mut s = SaStat {
                    proto: w.first()?.to_string(),
                    spi: u32::from_str_radix(w.get(1)?.strip_prefix("spi=0x")?, 16).ok()?,
                    src: w.get(2)?.to_string(),
                    dst: w.get(4)?.to_string(),
                    ..SaStat::default()
                };
                for kv in w.get(5..)? {
                    let (k, v) = kv.split_once('=')?;
                    let v: u64 = v.parse().ok()?;
                    match k {
                        "packets" => s.packets = v,
                        "bytes" => s.bytes = v,
                        _ => {
                            s.drops.insert(k.to_string(), v);
                        }
                    }
                }
                c.sas.push(s);
            } else if let Some(d) = line.strip_prefix("drop ") {
                let (k, v) = d.split_once('=')?;
                c.drops.insert(k.to_string(), v.parse().ok()?);
            } else if let Some((k, v)) = line.split_once('=') {
                c.plane.insert(k.to_string(), v.parse().ok()?);
            }
        }
        Some(c)
    }

    /// A data-plane counter (0 when absent).
    pub fn get(&self, name: &str) -> u64 {
        self.plane.get(name).copied().unwrap_or(0)
    }

    /// The SA `proto`/`spi` (panics when absent).
    pub fn sa(&self, proto: &str, spi: u32) -> &SaStat {
        self.sas
            .iter()
            .find(|s| s.proto == proto && s.spi == spi)
            .unwrap_or_else(|| panic!("no SA {proto} 0x{spi:x} in {self:#?}"))
    }

    /// Every nonzero data-plane counter that names a drop: the engine's and the policy's
    /// reasons (Solaris ipdrop names: `spd_*`, `esp_*`, `ah_*`, `sadb_*`, `ip_*`), the
    /// nftables table's cleartext drops (`clear_drop_*`) and the daemon's own failures
    /// (`*error*`, `*malformed*`, `*bad*`, `*full*`). Path counters (tun_in, out_protected,
    /// wire_out, ...) are not drops.
    pub fn drop_reasons(&self) -> BTreeMap<String, u64> {
        self.plane
            .iter()
            .filter(|(k, v)| {
                **v > 0
                    && (["spd_", "esp_", "ah_", "sadb_", "ip_"]
                        .iter()
                        .any(|p| k.starts_with(p))
                        || ["drop", "error", "malformed", "bad", "full"]
                            .iter()
                            .any(|w| k.contains(w)))
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// Every path counter of one daemon agrees with its per-SA counts: what went into the TUN
/// was all protected and sent, what came from the wire was all accepted and delivered;
/// nothing was dropped.
pub fn check_daemon(name: &str, c: &Counters, out_sas: &[(&str, u32)], in_sas: &[(&str, u32)]) {
    let out = c.get("out_protected");
    let inn = c.get("in_accepted");
    assert!(out > 0 && inn > 0, "{name}: no traffic counted: {c:#?}");
    // The kernel's MLD reports on the TUN link (IPv6 forwarding on) stay there.
    assert_eq!(
        c.get("tun_in"),
        out + c.get("tun_link_scope"),
        "{name}: tun_in vs out_protected: {c:#?}"
    );
    assert_eq!(c.get("out_bypass"), 0, "{name}: bypassed: {c:#?}");
    assert_eq!(
        c.get("wire_out"),
        out,
        "{name}: wire_out vs out_protected: {c:#?}"
    );
    assert_eq!(
        c.get("wire_in"),
        inn,
        "{name}: wire_in vs in_accepted: {c:#?}"
    );
    assert_eq!(
        c.get("tun_out"),
        inn,
        "{name}: tun_out vs in_accepted: {c:#?}"
    );
    assert_eq!(c.drop_reasons(), BTreeMap::new(), "{name}: drops: {c:#?}");
    assert!(c.drops.is_empty(), "{name}: engine drops: {c:#?}");
    for (proto, spi) in out_sas {
        let s = c.sa(proto, *spi);
        assert_eq!(
            s.packets, out,
            "{name}: outbound SA {proto} 0x{spi:x}: {s:?}"
        );
        assert!(s.drops.is_empty(), "{name}: SA drops {s:?}");
    }
    for (proto, spi) in in_sas {
        let s = c.sa(proto, *spi);
        assert_eq!(
            s.packets, inn,
            "{name}: inbound SA {proto} 0x{spi:x}: {s:?}"
        );
        assert!(s.drops.is_empty(), "{name}: SA drops {s:?}");
    }
}

/// The daemons' counters agree with each other and with the capture (`proto` 50 or 51 is
/// the outermost header on the wire).
pub fn check_wire(pcap: &Pcap, proto: u8, a: &str, b: &str, ca: &Counters, cb: &Counters) {
    let (ia, ib) = (a.parse().unwrap(), b.parse().unwrap());
    let ab = pcap.count(proto, ia, ib) as u64;
    let ba = pcap.count(proto, ib, ia) as u64;
    assert_eq!(
        ab,
        ca.get("wire_out"),
        "captured {a} -> {b} vs A's wire_out"
    );
    assert_eq!(ab, cb.get("wire_in"), "captured {a} -> {b} vs B's wire_in");
    assert_eq!(
        ba,
        cb.get("wire_out"),
        "captured {b} -> {a} vs B's wire_out"
    );
    assert_eq!(ba, ca.get("wire_in"), "captured {b} -> {a} vs A's wire_in");
}

// ---------------------------------------------------------------------------------------
// Captures.

/// A tcpdump capture on one interface of a namespace, written to a file of the lab.
/// Stopped with SIGINT on [`stop`](Self::stop) or drop.
pub struct Capture {
    proc: Option<Proc>,
    ns: Ns,
    iface: String,
    /// The pcap file.
    pub file: PathBuf,
}

impl Capture {
    /// Starts tcpdump on `iface` in `ns` (unbuffered writes, no name resolution, root
    /// kept so it can write into the lab directory) and waits until it is listening.
    pub fn start(lab: &Lab, ns: &Ns, iface: &str, name: &str) -> Self {
        let file = lab.dir.join(format!("{name}.pcap"));
        let proc = ns.spawn(&[
            "tcpdump",
            "-i",
            iface,
            "-n",
            "-U",
            "-B",
            "8192",
            "-Z",
            "root",
            "-w",
            &file.display().to_string(),
        ]);
        if proc
            .wait_stderr(Duration::from_secs(10), |l| l.contains("listening on"))
            .is_none()
        {
            panic!(
                "tcpdump on {iface} in {} did not start:\n{}",
                ns.name,
                proc.stderr().join("\n")
            );
        }
        Self {
            proc: Some(proc),
            ns: ns.clone(),
            iface: iface.to_string(),
            file,
        }
    }

    /// Stops tcpdump (SIGINT), checks it lost nothing, and reads the capture.
    pub fn stop(mut self) -> Pcap {
        let mut p = self.proc.take().unwrap();
        // libpcap hands frames over in blocks, retired when full or after tcpdump's
        // timeout (immediate mode loses frames here): frames of a block not yet retired at
        // SIGINT never reach the file. So a sentinel frame (ethertype 0x88b5, local
        // experimental) goes out last, and tcpdump stops once the file holds it.
        let sentinel = self.ns.python(SENTINEL, &[&self.iface]);
        let t0 = Instant::now();
        let mut sentinel = Some(sentinel);
        loop {
            if let Some(mut s) = sentinel.take() {
                s.success(Duration::from_secs(5));
            }
            if Pcap::read(&self.file).sentinel().is_some() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the sentinel frame never reached {}",
                self.file.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        p.signal("INT");
        let (_, _) = p.finish(Duration::from_secs(10));
        let err = p.stderr();
        let dropped = err
            .iter()
            .find_map(|l| l.strip_suffix("packets dropped by kernel"))
            .and_then(|n| n.trim().parse::<u64>().ok());
        assert_eq!(dropped, Some(0), "tcpdump lost frames:\n{}", err.join("\n"));
        let mut pcap = Pcap::read(&self.file);
        let end = pcap.sentinel().unwrap();
        pcap.frames.truncate(end);
        pcap
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal("INT");
            let _ = p.wait_exit(Duration::from_secs(5));
        }
    }
}

/// An IP packet of a captured frame.
#[derive(Clone, Debug)]
pub struct IpPkt {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The protocol after the IP header (IPv6: after hop-by-hop and destination options).
    pub proto: u8,
    /// The bytes after that header.
    pub payload: Vec<u8>,
}

impl IpPkt {
    /// For ESP and AH: the SPI.
    pub fn spi(&self) -> Option<u32> {
        let off = match self.proto {
            50 => 0,
            51 => 4,
            _ => return None,
        };
        let b = self.payload.get(off..off + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// For AH: the next header it protects.
    pub fn ah_next(&self) -> Option<u8> {
        (self.proto == 51).then(|| self.payload.first().copied())?
    }

    /// For AH: the bytes after the AH header.
    pub fn ah_payload(&self) -> Option<&[u8]> {
        if self.proto != 51 {
            return None;
        }
        let len = (usize::from(*self.payload.get(1)?) + 2) * 4;
        self.payload.get(len..)
    }

    /// ICMPv6 neighbour discovery or multicast listener messages (link housekeeping the
    /// kernel sends in clear).
    pub fn is_nd_or_mld(&self) -> bool {
        self.proto == 58
            && self
                .payload
                .first()
                .is_some_and(|t| matches!(t, 130..=137 | 143))
    }

    /// The UDP or TCP destination port (cleartext transport only).
    pub fn dport(&self) -> Option<u16> {
        if !matches!(self.proto, 6 | 17) {
            return None;
        }
        let b = self.payload.get(2..4)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Ethertype of the frame that marks the end of a capture (IEEE local experimental).
pub const SENTINEL_ETHERTYPE: u16 = 0x88b5;

/// Sends one sentinel frame out of interface `IFACE` (broadcast, ethertype 0x88b5).
const SENTINEL: &str = r#"
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
s.send(b'\xff' * 6 + s.getsockname()[4] + b'\x88\xb5' + b'ironswan end of capture'.ljust(46, b'.'))
"#;

/// A decoded captured frame.
#[derive(Clone, Debug)]
pub enum Frame {
    /// ARP.
    Arp,
    /// IPv4 or IPv6.
    Ip(IpPkt),
    /// Anything else (its ethertype).
    Other(u16),
}

/// A capture file (classic pcap, Ethernet).
#[derive(Clone, Debug)]
pub struct Pcap {
    /// The frames, decoded.
    pub frames: Vec<Frame>,
}

fn decode_ip(b: &[u8]) -> Option<IpPkt> {
    match b.first()? >> 4 {
        4 => {
            let ihl = usize::from(b.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
            let s: [u8; 4] = b.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = b.get(16..20)?.try_into().ok()?;
            Some(IpPkt {
                src: IpAddr::V4(Ipv4Addr::from(s)),
                dst: IpAddr::V4(Ipv4Addr::from(d)),
                proto: *b.get(9)?,
                payload: b.get(ihl..total.min(b.len()))?.to_vec(),
            })
        }
        6 => {
            let s: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = b.get(24..40)?.try_into().ok()?;
            let plen = usize::from(u16::from_be_bytes([*b.get(4)?, *b.get(5)?]));
            let end = (40 + plen).min(b.len());
            let mut next = *b.get(6)?;
            let mut off = 40;
            // Hop-by-hop (MLD's router alert) and destination options.
            while matches!(next, 0 | 60) {
                next = *b.get(off)?;
                off += (usize::from(*b.get(off + 1)?) + 1) * 8;
            }
            Some(IpPkt {
                src: IpAddr::V6(Ipv6Addr::from(s)),
                dst: IpAddr::V6(Ipv6Addr::from(d)),
                proto: next,
                payload: b.get(off..end)?.to_vec(),
            })
        }
        _ => None,
    }
}

impl Pcap {
    /// Reads and decodes `path`.
    pub fn read(path: &Path) -> Self {
        let b = fs::read(path).unwrap();
        assert!(b.len() >= 24, "{}: no pcap header", path.display());
        let magic = u32::from_le_bytes(b[0..4].try_into().unwrap());
        let le = match magic {
            0xa1b2_c3d4 | 0xa1b2_3c4d => true,
            0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
            m => panic!("{}: not a pcap file (magic {m:#x})", path.display()),
        };
        let u32_at = |o: usize| {
            let a: [u8; 4] = b[o..o + 4].try_into().unwrap();
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        };
        assert_eq!(u32_at(20), 1, "link type must be Ethernet");
        let mut frames = Vec::new();
        let mut off = 24;
        // A file still being written may end in a partial record: it is left out.
        while off + 16 <= b.len() {
            let caplen = u32_at(off + 8) as usize;
            let Some(data) = b.get(off + 16..off + 16 + caplen) else {
                break;
            };
            off += 16 + caplen;
            if data.len() < 14 {
                frames.push(Frame::Other(0));
                continue;
            }
            let ethertype = u16::from_be_bytes([data[12], data[13]]);
            frames.push(match ethertype {
                0x0806 => Frame::Arp,
                0x0800 | 0x86dd => match decode_ip(&data[14..]) {
                    Some(p) => Frame::Ip(p),
                    None => Frame::Other(ethertype),
                },
                t => Frame::Other(t),
            });
        }
        Self { frames }
    }

    /// The index of the first sentinel frame (see [`Capture::stop`]).
    pub fn sentinel(&self) -> Option<usize> {
        self.frames
            .iter()
            .position(|f| matches!(f, Frame::Other(SENTINEL_ETHERTYPE)))
    }

    /// The IP packets.
    pub fn ip(&self) -> impl Iterator<Item = &IpPkt> {
        self.frames.iter().filter_map(|f| match f {
            Frame::Ip(p) => Some(p),
            _ => None,
        })
    }

    /// Frames that are neither ARP, ICMPv6 neighbour discovery / MLD, nor IP protocol
    /// 50/51 between `a` and `b`: every one is a cleartext leak (or a stranger).
    pub fn not_ipsec_between(&self, a: IpAddr, b: IpAddr) -> Vec<String> {
        self.frames
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match f {
                Frame::Arp => None,
                Frame::Ip(p) if p.is_nd_or_mld() => None,
                Frame::Ip(p)
                    if matches!(p.proto, 50 | 51)
                        && ((p.src, p.dst) == (a, b) || (p.src, p.dst) == (b, a)) =>
                {
                    None
                }
                other => Some(format!("frame {}: {other:?}", i + 1)),
            })
            .collect()
    }

    /// The ESP or AH packets (`proto` 50 or 51) from `src` to `dst`.
    pub fn count(&self, proto: u8, src: IpAddr, dst: IpAddr) -> usize {
        self.ip()
            .filter(|p| p.proto == proto && p.src == src && p.dst == dst)
            .count()
    }
}

/// Asserts that `pcap` holds only IPsec between `a` and `b` (plus ARP and ND).
pub fn assert_only_ipsec(pcap: &Pcap, a: &str, b: &str) {
    let leaks = pcap.not_ipsec_between(a.parse().unwrap(), b.parse().unwrap());
    assert!(
        leaks.is_empty(),
        "{} frame(s) on the wire that are not IPsec between {a} and {b}:\n{}",
        leaks.len(),
        leaks
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// tshark.

/// One line of Wireshark's `esp_sa` table (see /work/shared/reference/interop.md).
pub fn esp_sa_line(
    src: &str,
    dst: &str,
    spi: u32,
    encr: &str,
    encr_key: &str,
    auth: &str,
    auth_key: &str,
) -> String {
    let fam = if src.contains(':') { "IPv6" } else { "IPv4" };
    let ak = if auth_key.is_empty() {
        String::new()
    } else {
        format!("0x{auth_key}")
    };
    format!("\"{fam}\",\"{src}\",\"{dst}\",\"0x{spi:08x}\",\"{encr}\",\"0x{encr_key}\",\"{auth}\",\"{ak}\"\n")
}

/// Dissects `pcap` with tshark, decrypting ESP with the `esp_sa` table text (in a
/// throwaway profile) and checking ICVs; the rows matching `filter`, one `Vec` of field
/// values per frame.
pub fn tshark(
    lab: &Lab,
    pcap: &Path,
    esp_sa: &str,
    filter: &str,
    fields: &[&str],
) -> Vec<Vec<String>> {
    let conf = lab.dir.join("wireshark");
    fs::create_dir_all(&conf).unwrap();
    fs::write(conf.join("esp_sa"), esp_sa).unwrap();
    let mut c = Command::new("tshark");
    c.env("WIRESHARK_CONFIG_DIR", &conf)
        .arg("-n")
        .arg("-r")
        .arg(pcap)
        .args([
            "-o",
            "esp.enable_encryption_decode:TRUE",
            "-o",
            "esp.enable_authentication_check:TRUE",
            "-Y",
            filter,
            "-T",
            "fields",
            "-E",
            "separator=/t",
        ]);
    for f in fields {
        c.args(["-e", f]);
    }
    let out = run_ok(&mut c);
    out.lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// A number as tshark prints a field (decimal, or `0x` hex for hex-based fields).
pub fn tshark_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

// ---------------------------------------------------------------------------------------
// Traffic helpers (Python, run inside a namespace).

/// TCP sink: `ADDR PORT`; prints `ready`, accepts one connection, reads to the end, prints
/// `BYTES SHA256`.
pub const TCP_SINK: &str = r#"
import hashlib, socket, sys
a, p = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ':' in a else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((a, p)); s.listen(1)
print('ready', flush=True)
s.settimeout(20)
c, _ = s.accept()
c.settimeout(20)
h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    n += len(b); h.update(b)
print(n, h.hexdigest(), flush=True)
"#;

/// TCP source: `ADDR PORT BYTES`; sends BYTES pseudo-random bytes, prints `BYTES SHA256`.
pub const TCP_SOURCE: &str = r#"
import hashlib, os, socket, sys
a, p, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ':' in a else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(20)
s.connect((a, p))
chunk = os.urandom(1 << 16)
h = hashlib.sha256(); n = 0
while n < total:
    b = chunk[: min(len(chunk), total - n)]
    s.sendall(b); h.update(b); n += len(b)
s.shutdown(socket.SHUT_WR)
s.recv(1)
s.close()
print(n, h.hexdigest(), flush=True)
"#;

/// UDP echo: `ADDR PORT`; prints `ready`, echoes datagrams until 3 s pass without one
/// (or 20 s in all), prints the number echoed.
pub const UDP_ECHO: &str = r#"
import socket, sys, time
a, p = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ':' in a else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((a, p))
print('ready', flush=True)
n = 0; t0 = time.time()
s.settimeout(3)
while time.time() - t0 < 20:
    try:
        b, peer = s.recvfrom(65536)
    except socket.timeout:
        break
    s.sendto(b, peer); n += 1
print(n, flush=True)
"#;

/// UDP client: `ADDR PORT COUNT SIZE`; sends COUNT datagrams of SIZE bytes, each waiting
/// (1 s) for its echo; prints `SENT ECHOED`.
pub const UDP_CLIENT: &str = r#"
import os, socket, sys
a, p, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
fam = socket.AF_INET6 if ':' in a else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(1)
sent = echoed = 0
for i in range(count):
    b = i.to_bytes(4, 'big') + os.urandom(size - 4)
    try:
        s.sendto(b, (a, p)); sent += 1
    except OSError:
        continue
    try:
        r, _ = s.recvfrom(65536)
        if r == b:
            echoed += 1
    except socket.timeout:
        pass
print(sent, echoed, flush=True)
"#;

/// UDP sender: `ADDR PORT COUNT INTERVAL`; sends COUNT small datagrams INTERVAL seconds
/// apart without waiting for anything; prints `SENT FAILED` (send errors, e.g. a
/// prohibit route).
pub const UDP_SEND: &str = r#"
import socket, sys, time
a, p, count, gap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ':' in a else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
sent = failed = 0
for i in range(count):
    try:
        s.sendto(b'ironswan cleartext marker %06d' % i, (a, p)); sent += 1
    except OSError:
        failed += 1
    time.sleep(gap)
print(sent, failed, flush=True)
"#;

/// UDP counter: `ADDR PORT SECONDS`; prints `ready`, counts datagrams for SECONDS, prints
/// the count.
pub const UDP_COUNT: &str = r#"
import socket, sys, time
a, p, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
fam = socket.AF_INET6 if ':' in a else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((a, p))
print('ready', flush=True)
n = 0; end = time.time() + secs
while True:
    left = end - time.time()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        s.recvfrom(65536); n += 1
    except socket.timeout:
        break
print(n, flush=True)
"#;

/// Runs a TCP transfer of `bytes` from `src_ns` to `dst` (`addr`, `port`, a sink started
/// in `dst_ns`); asserts that the sink got exactly what was sent.
pub fn tcp_transfer(src_ns: &Ns, dst_ns: &Ns, addr: &str, port: u16, bytes: usize) {
    let port = port.to_string();
    let mut sink = dst_ns.python(TCP_SINK, &[addr, &port]);
    sink.wait_stdout(Duration::from_secs(5), |l| l == "ready");
    let mut src = src_ns.python(TCP_SOURCE, &[addr, &port, &bytes.to_string()]);
    let sent = src.success(Duration::from_secs(30));
    let got = sink.success(Duration::from_secs(10));
    let sent = sent.last().unwrap();
    let got = got.last().unwrap();
    assert!(sent.starts_with(&format!("{bytes} ")), "TCP source: {sent}");
    assert_eq!(got, sent, "TCP sink received other bytes than sent");
}

/// Sends `count` UDP datagrams of `size` bytes from `src_ns` to an echo server in `dst_ns`;
/// asserts every one came back.
pub fn udp_echo(src_ns: &Ns, dst_ns: &Ns, addr: &str, port: u16, count: u32, size: u32) {
    let port = port.to_string();
    let echo = dst_ns.python(UDP_ECHO, &[addr, &port]);
    echo.wait_stdout(Duration::from_secs(5), |l| l == "ready");
    let mut client = src_ns.python(
        UDP_CLIENT,
        &[addr, &port, &count.to_string(), &size.to_string()],
    );
    let out = client.success(Duration::from_secs(30));
    assert_eq!(
        out.last().map(String::as_str),
        Some(format!("{count} {count}").as_str()),
        "UDP datagrams sent / echoed"
    );
    echo.signal("TERM");
}
