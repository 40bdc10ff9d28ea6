//! Library parts of the Ironswan command-line tools.
#![forbid(unsafe_code)]

pub mod capture;
pub mod control;
pub mod ipsecadm;
pub mod ipsecalgs;
pub mod ipsecconf;
pub mod ipseckey;
pub mod pcaptool;

/// A tool's arguments parsed by clap, or the exit status to return once clap has printed
/// its message: `usage_status` for a usage error, success for `--help` and `--version`.
pub fn parse_args<A: clap::Parser>(
    args: Vec<std::ffi::OsString>,
    usage_status: u8,
) -> Result<A, std::process::ExitCode> {
    A::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            std::process::ExitCode::from(usage_status)
        } else {
            std::process::ExitCode::SUCCESS
        }
    })
}
