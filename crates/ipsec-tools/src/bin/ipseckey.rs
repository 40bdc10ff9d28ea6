//! `ipseckey(8)`: manual keying over PF_KEY v2 (see `ipsec_tools::ipseckey`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    ipsec_tools::ipseckey::main_with(std::env::args_os().collect())
}
