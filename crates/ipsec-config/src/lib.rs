//! Ironswan's configuration languages: SAs (`ipseckey`, Wireshark `esp_sa`) and policy
//! (`ipsecconf`): text in, validated values out, and back to text.
//!
//! ```text
//!   ipseckey file / interactive line
//!        │  ipseckey::parse / parse_with / parse_file
//!        ▼
//!   Vec<Command>  (add, update, delete, get, flush, dump, save, monitor, help)
//!        │  SaSpec::to_config  (defaults, tunnel-mode rule, algorithm table checks)
//!        ▼
//!   ipsec_core::SaConfig ──► Sadb::add / PF_KEY ADD
//!        │  ipseckey::print_add / ipseckey::save
//!        ▼
//!   `add` lines that parse back into an equal SaConfig
//!
//!   Wireshark esp_sa table ──► esp_sa::parse ──► Vec<SaConfig>
//!   SaConfig ──► esp_sa::format_line ──► one esp_sa line for a tshark profile
//!
//!   ipsecconf file ──► ipsecconf::parse ──► PolicyFile (typed AST, warnings)
//!        │  PolicyFile::to_rules                 │  ipsecconf::print
//!        ▼                                        ▼
//!   Vec<ipsec_core::spd::Rule> ──► Spd         policy text that parses back equal
//! ```
//!
//! * [`ipseckey`]: the ipseckey(8) command language of Solaris/illumos, every command,
//!   extension and synonym, with a few Ironswan extensions (ESN, replay windows up to 4096,
//!   legacy-algorithm opt-in). Errors carry the file, the 1-based line and column of the
//!   offending token, the token and what was expected. A text with any error yields no
//!   commands at all.
//! * [`ipsecalgs`]: Solaris's `/etc/inet/ipsecalgs` table of protocols and algorithms
//!   (PROTO and ALG lines), its edits (`ipsecalgs -a/-r/-R/-e`) and the check ipsecd makes
//!   on a sync against what ipsec-crypto implements.
//! * [`esp_sa`]: Wireshark's `esp_sa` user-access table, for the offline pcap tool and for
//!   writing tshark profiles in tests.
//! * [`fuzz_support`]: the body of the `ipseckey_parse` fuzz target, shared with the test
//!   that replays the committed fuzz inputs.
//!
//! This crate performs no I/O except [`ipseckey::parse_file`] (which reads the file) and host
//! name resolution in [`ipseckey::parse`] when the `numeric` option is off. It talks to no
//! kernel, daemon or SADB: executing the commands is the caller's business.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod esp_sa;
pub mod fuzz_support;
pub mod ipsecalgs;
pub mod ipsecconf;
pub mod ipseckey;
mod text;
