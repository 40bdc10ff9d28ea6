//! `ipsecadm`: properties, reload and the policy logger of the running ipsecd (see
//! `ipsec_tools::ipsecadm`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    ipsec_tools::ipsecadm::main_with(std::env::args_os().collect())
}
