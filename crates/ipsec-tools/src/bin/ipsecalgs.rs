//! `ipsecalgs(8)`: the IPsec protocols and algorithms table (see `ipsec_tools::ipsecalgs`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    ipsec_tools::ipsecalgs::main_with(std::env::args_os().collect())
}
