//! `ipsecconf(8)`: the system-wide IPsec policy, via ipsecd (see `ipsec_tools::ipsecconf`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    ipsec_tools::ipsecconf::main_with(std::env::args_os().collect())
}
