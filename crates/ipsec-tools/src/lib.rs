//! Library parts of the Ironswan command-line tools.
#![forbid(unsafe_code)]

pub mod capture;
pub mod control;
pub mod ipsecalgs;
pub mod ipsecconf;
pub mod ipseckey;
pub mod pcaptool;

/// Parses a tool's arguments (argv\[0\] first) with clap; on `--help`, `--version` or an
/// error, prints clap's text and gives the exit status to return (0 for help and version).
pub fn parse_args<T: clap::Parser>(
    args: Vec<std::ffi::OsString>,
) -> Result<T, std::process::ExitCode> {
    T::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            std::process::ExitCode::from(1)
        } else {
            std::process::ExitCode::SUCCESS
        }
    })
}
