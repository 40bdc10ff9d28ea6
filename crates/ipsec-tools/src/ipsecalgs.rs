//! `ipsecalgs(8)`: the table of IPsec protocols and algorithms, with Solaris's options.
//!
//! ```text
//! ipsecalgs                                   list the table file
//! ipsecalgs -l                                list ipsecd's table (the "kernel" table)
//! ipsecalgs -s                                sync the table file to ipsecd
//! ipsecalgs -a [-P protocol-number | -p protocol-name] -k keylen-list [-i inc]
//!           [-K default-keylen] -b blocklen-list -n alg-names -N alg-number -m mech-name
//!           [-M MAC-length] [-S salt-length] [-I IV-length] [-F flags] [-f] [-s]
//! ipsecalgs -P protocol-number -p protocol-name [-e exec-mode] [-f] [-s]   (also with -a)
//! ipsecalgs -r -p protocol-name|-P protocol-number -n alg-name|-N alg-number [-s]
//! ipsecalgs -R -P protocol-number|-p protocol-name [-s]
//! ipsecalgs -e exec-mode -P protocol-number|-p protocol-name [-s]
//! ```
//!
//! The table lives in `--file` (default `/etc/inet/ipsecalgs`); when the file does not exist
//! its content is the built-in table (exactly what ipsec-crypto implements). Every change
//! rewrites the file atomically (temporary file, fsync, rename). `-s` sends the file to ipsecd
//! (`--socket`), which checks each entry and refuses the whole table, naming the entry's file,
//! line and column, if it cannot implement one; see ipsecd's `algs` module for what a sync
//! changes. Listings follow Solaris's layout with an extra `RFC 8221:` line per algorithm.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use ipsec_config::ipsecalgs::{self, parse, parse_flags, AlgEntry, ExecMode, Table};

/// Default table file (Solaris's path).
pub const DEFAULT_FILE: &str = "/etc/inet/ipsecalgs";

/// Configure the IPsec protocols and algorithms table.
#[derive(Parser, Debug)]
#[command(name = "ipsecalgs", version, disable_help_flag = true)]
struct Args {
    /// Add an algorithm (or, with -P and -p and no algorithm options, a protocol).
    #[arg(short = 'a')]
    add: bool,
    /// Force: replace an existing algorithm or protocol with the same number or name.
    #[arg(short = 'f')]
    force: bool,
    /// List ipsecd's table.
    #[arg(short = 'l')]
    list_kernel: bool,
    /// Remove an algorithm.
    #[arg(short = 'r')]
    remove: bool,
    /// Remove a protocol and its algorithms.
    #[arg(short = 'R')]
    remove_proto: bool,
    /// Sync the table file to ipsecd.
    #[arg(short = 's')]
    sync: bool,
    /// Block sizes (ESP) or MAC lengths (AH), bytes, comma-separated.
    #[arg(short = 'b')]
    blocks: Option<String>,
    /// Protocol name.
    #[arg(short = 'p')]
    proto_name: Option<String>,
    /// Protocol number.
    #[arg(short = 'P')]
    proto_number: Option<u32>,
    /// Key size increment in bits (with a min-max key range).
    #[arg(short = 'i')]
    inc: Option<u16>,
    /// Key sizes in bits: a list (128,192,256) or, with -i, a range (128-256).
    #[arg(short = 'k')]
    keys: Option<String>,
    /// Default key size in bits.
    #[arg(short = 'K')]
    default_key: Option<u16>,
    /// Cryptographic mechanism name (e.g. CKM_AES_CBC).
    #[arg(short = 'm')]
    mech: Option<String>,
    /// Algorithm names, comma-separated (one name with -r).
    #[arg(short = 'n')]
    names: Option<String>,
    /// Algorithm number.
    #[arg(short = 'N')]
    alg_number: Option<u8>,
    /// Execution mode: sync or async.
    #[arg(short = 'e')]
    exec: Option<String>,
    /// Salt length in bytes.
    #[arg(short = 'S')]
    salt: Option<u16>,
    /// MAC (ICV) length in bytes.
    #[arg(short = 'M')]
    mac: Option<u16>,
    /// IV length in bytes.
    #[arg(short = 'I')]
    iv: Option<u16>,
    /// Flags: a number or names (COUNTER,COMBINED,CCM,GCM,GMAC).
    #[arg(short = 'F')]
    flags: Option<String>,
    /// The table file.
    #[arg(long, env = "IRONSWAN_IPSECALGS_FILE", default_value = DEFAULT_FILE)]
    file: PathBuf,
    /// ipsecd's control socket.
    #[arg(
        long,
        env = "IRONSWAN_CONTROL_SOCKET",
        default_value = "/run/ironswan/control.sock"
    )]
    socket: PathBuf,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// What the options ask for (Solaris's rules: one command; -P with -p defines a protocol).
enum Cmd {
    ShowFile,
    ListKernel,
    SyncOnly,
    AddAlg,
    AddProto,
    RemoveAlg,
    RemoveProto,
    ExecMode,
}

fn command(a: &Args) -> Result<Cmd, String> {
    let alg_opts = a.keys.is_some()
        || a.blocks.is_some()
        || a.names.is_some()
        || a.alg_number.is_some()
        || a.mech.is_some();
    let proto_def = a.proto_number.is_some() && a.proto_name.is_some();
    let mut cmds = Vec::new();
    // -a with -P and -p and no algorithm options defines a protocol.
    let add_proto = proto_def && !a.remove && !a.remove_proto && (!a.add || !alg_opts);
    if a.add && !add_proto {
        cmds.push(Cmd::AddAlg);
    }
    if a.list_kernel {
        cmds.push(Cmd::ListKernel);
    }
    if a.remove {
        cmds.push(Cmd::RemoveAlg);
    }
    if a.remove_proto {
        cmds.push(Cmd::RemoveProto);
    }
    if add_proto {
        cmds.push(Cmd::AddProto);
    } else if a.exec.is_some() && cmds.is_empty() {
        cmds.push(Cmd::ExecMode);
    }
    match cmds.len() {
        0 if a.sync => Ok(Cmd::SyncOnly),
        0 if alg_opts || a.force || a.proto_name.is_some() || a.proto_number.is_some() => {
            Err("these options need a command: -a, -r, -R, -e, or -P with -p".into())
        }
        0 => Ok(Cmd::ShowFile),
        1 => {
            let c = cmds.remove(0);
            if matches!(c, Cmd::ListKernel) && a.sync {
                return Err("-l and -s cannot be combined".into());
            }
            Ok(c)
        }
        _ => Err("give one of -a, -l, -r, -R, -e, or -P with -p".into()),
    }
}

/// Reads the table file; the built-in table when it does not exist.
fn load(path: &Path) -> Result<Table, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &path.display().to_string()).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Table::builtin()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the table file atomically (mode 0644: it holds no secrets).
fn store(path: &Path, t: &Table) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    ipsec_sys::file::write_private_atomic(path, t.to_file_text().as_bytes())
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The protocol number from -P, or from -p looked up in the table.
fn proto_of(a: &Args, t: &Table) -> Result<u32, String> {
    match (a.proto_number, &a.proto_name) {
        (Some(n), _) => Ok(n),
        (None, Some(name)) => t
            .proto_by_name(name)
            .ok_or_else(|| format!("unknown protocol \"{name}\"")),
        (None, None) => Err("missing protocol: give -P protocol-number or -p protocol-name".into()),
    }
}

fn exec_mode(a: &Args) -> Result<ExecMode, String> {
    a.exec.as_deref().map_or(Ok(ExecMode::Sync), |e| {
        ExecMode::parse(e).ok_or_else(|| format!("invalid execution mode \"{e}\" (sync or async)"))
    })
}

fn new_alg(a: &Args, t: &Table) -> Result<AlgEntry, String> {
    let proto = proto_of(a, t)?;
    let number = a.alg_number.ok_or("missing algorithm number (-N)")?;
    let keys = a.keys.as_deref().ok_or("missing key size(s) (-k)")?;
    let names = a.names.as_deref().ok_or("missing algorithm name(s) (-n)")?;
    let blocks = a
        .blocks
        .as_deref()
        .ok_or("missing block/MAC lengths (-b)")?;
    let mech = a.mech.as_deref().ok_or("missing mechanism name (-m)")?;
    // -k and -i together are the file's range form; -K the default.
    let field = match (keys.contains('-'), a.inc) {
        (true, Some(i)) => format!("{keys},{i}"),
        (true, None) => return Err("missing key increment (-i) for a key-size range".into()),
        (false, Some(_)) => {
            return Err("key increment (-i) must not be given with a key-size list".into())
        }
        (false, None) => keys.to_string(),
    };
    let field = a
        .default_key
        .map_or(field.clone(), |d| format!("{d}/{field}"));
    // The entry goes through the file parser, so that what is written reads back.
    let text = format!("PROTO|{proto}|P\nALG|{proto}|{number}|{names}|{mech}|{field}|{blocks}\n");
    let mut entry = parse(&text, "command line")
        .map_err(|e| format!("-n/-m/-k/-i/-K/-b: {}", e.message))?
        .algs
        .into_iter()
        .next()
        .ok_or("no algorithm entry")?;
    entry.line = 0;
    let params: Vec<u16> = [a.iv, a.mac, a.salt]
        .iter()
        .map(|p| p.unwrap_or(0))
        .collect();
    if a.iv.is_some() || a.mac.is_some() || a.salt.is_some() {
        entry.params = params;
    }
    if let Some(f) = &a.flags {
        let bits = parse_flags(f).ok_or_else(|| format!("invalid flags \"{f}\""))?;
        entry.flags = Some(bits | ipsecalgs::FLAG_VALID);
    }
    Ok(entry)
}

fn run(a: &Args) -> Result<String, String> {
    let cmd = command(a)?;
    if matches!(cmd, Cmd::ListKernel) {
        // ipsecd's table; the file is not read.
        let text = crate::control::request(&a.socket, "algs show")?;
        let k = parse(&text, "ipsecd").map_err(|e| e.to_string())?;
        return Ok(k.listing("Kernel list of algorithms:"));
    }
    let mut t = load(&a.file)?;
    let changed = match cmd {
        Cmd::ShowFile => {
            return Ok(t.listing("List of algorithms, grouped by IPsec protocol:"));
        }
        Cmd::ListKernel | Cmd::SyncOnly => false,
        Cmd::AddAlg => {
            let e = new_alg(a, &t)?;
            t.add_alg(e, a.force)?;
            true
        }
        Cmd::AddProto => {
            let (Some(n), Some(name)) = (a.proto_number, &a.proto_name) else {
                return Err("-P and -p are both needed".into());
            };
            t.add_proto(n, name, exec_mode(a)?, a.force)
                .map_err(|e| format!("cannot add protocol {n} \"{name}\": {e}"))?;
            true
        }
        Cmd::RemoveAlg => {
            let proto = proto_of(a, &t)?;
            if let Some(n) = &a.names {
                if n.contains(',') {
                    return Err("give a single algorithm name for removal, not a list".into());
                }
            }
            if a.alg_number.is_none() && a.names.is_none() {
                return Err("missing algorithm: give -n alg-name or -N alg-number".into());
            }
            t.remove_alg(proto, a.alg_number, a.names.as_deref())?;
            true
        }
        Cmd::RemoveProto => {
            let proto = proto_of(a, &t)?;
            t.remove_proto(proto)?;
            true
        }
        Cmd::ExecMode => {
            let proto = proto_of(a, &t)?;
            t.set_exec(proto, exec_mode(a)?)?;
            true
        }
    };
    if changed {
        store(&a.file, &t)?;
    }
    if a.sync {
        let msg = format!("algs sync {}\n{}", a.file.display(), t.to_file_text());
        let reply = crate::control::request(&a.socket, &msg)?;
        return Ok(format!("{}\n", reply.trim_end()));
    }
    Ok(String::new())
}

/// Runs ipsecalgs with these arguments (argv\[0\] first); the process exit status.
pub fn main_with(args: Vec<OsString>) -> ExitCode {
    let args: Args = match crate::parse_args(args, 1) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ipsecalgs: {e}");
            ExitCode::from(1)
        }
    }
}
