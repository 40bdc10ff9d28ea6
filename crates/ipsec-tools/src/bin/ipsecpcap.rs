//! `ipsecpcap`: encrypt, decrypt and verify pcap/pcapng captures offline with SAs from an
//! ipseckey file (`--sa`) or a Wireshark `esp_sa` table (`--esp-sa`).
//!
//! Exit status: 0 when every packet was processed (encrypt: every packet matched an SA;
//! decrypt: every packet decrypted; verify: every packet passed the replay and ICV checks);
//! 1 when some packet was dropped, or did not match (no SA, not IPsec, not IP) and
//! `--pass-unmatched` was not given; 2 for usage errors, unreadable or malformed files, refused
//! SAs and unsupported link types.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ipsec_tools::pcaptool::{self, sa_files, Op, Options};

#[derive(Parser)]
#[command(
    name = "ipsecpcap",
    version,
    about = "Encrypt, decrypt and verify capture files with manually keyed IPsec SAs",
    long_about = "Encrypt, decrypt and verify pcap and pcapng capture files (raw IP, Ethernet \
                  and Linux cooked link types; IPv4 and IPv6) with ESP and AH SAs given in \
                  ipseckey(8) syntax or as a Wireshark esp_sa table.\n\n\
                  encrypt picks the outbound SA of each packet by its addresses (transport \
                  mode) or inner selectors (tunnel mode), applying AH+ESP when both match; \
                  decrypt and verify look SAs up by <protocol, destination, SPI> and \
                  reassemble fragments first. Each packet gets a line (SPI, sequence number, \
                  result or drop reason), then a summary per result and per SA.\n\n\
                  Exit status: 0 all packets processed; 1 some packet dropped or unmatched \
                  (unmatched packets are copied unchanged, and do not count as failures with \
                  --pass-unmatched); 2 bad usage, unreadable or malformed files, refused SAs, \
                  unsupported link types."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Apply ESP/AH to every packet an SA matches; write the result.
    Encrypt {
        #[command(flatten)]
        common: Common,
        /// Input capture (pcap or pcapng).
        input: PathBuf,
        /// Output capture (same format and link type as the input).
        output: PathBuf,
    },
    /// Decapsulate ESP/AH packets; write the inner packets.
    Decrypt {
        #[command(flatten)]
        common: Common,
        /// Input capture (pcap or pcapng).
        input: PathBuf,
        /// Output capture (same format and link type as the input).
        output: PathBuf,
    },
    /// Check each packet's replay window and ICV verdict; write nothing.
    Verify {
        #[command(flatten)]
        common: Common,
        /// Input capture (pcap or pcapng).
        input: PathBuf,
    },
}

#[derive(Args)]
struct Common {
    /// SAs in ipseckey(8) syntax (only `add` commands). May be repeated.
    #[arg(long = "sa", value_name = "FILE")]
    sa: Vec<PathBuf>,
    /// SAs as a Wireshark esp_sa table (the ESP dissector's UAT file). May be repeated.
    #[arg(long = "esp-sa", value_name = "FILE")]
    esp_sa: Vec<PathBuf>,
    /// Treat the --esp-sa SAs as tunnel mode (Wireshark's table has no mode; default
    /// transport). Tunnel SAs from it have no inner selectors: on encrypt they match any packet.
    #[arg(long)]
    esp_sa_tunnel: bool,
    /// No per-packet lines, only the summary.
    #[arg(short, long)]
    quiet: bool,
    /// Unmatched packets (no SA, not ESP/AH, not IP), which are copied unchanged, do not
    /// make the exit status non-zero.
    #[arg(long)]
    pass_unmatched: bool,
    /// Packets per engine batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    batch: u16,
    /// Threads, 1 to 3 [default: one per available CPU, at most 3]. The engine always runs on
    /// one. With 2 the output capture is written by a second thread (verify: the input is read
    /// by it), so file I/O overlaps with processing; with 3 the input is read by a third; 1
    /// reads, processes and writes on one thread (for debugging). Output, report and exit
    /// status are the same.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=3))]
    threads: Option<u8>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (op, common, input, output) = match cli.cmd {
        Cmd::Encrypt {
            common,
            input,
            output,
        } => (Op::Encrypt, common, input, Some(output)),
        Cmd::Decrypt {
            common,
            input,
            output,
        } => (Op::Decrypt, common, input, Some(output)),
        Cmd::Verify { common, input } => (Op::Verify, common, input, None),
    };
    if common.sa.is_empty() && common.esp_sa.is_empty() {
        eprintln!("ipsecpcap: no SAs: give --sa FILE (ipseckey syntax) or --esp-sa FILE");
        return ExitCode::from(2);
    }
    let mut sas = Vec::new();
    for p in &common.sa {
        match sa_files::load_ipseckey(p) {
            Ok(v) => sas.extend(v),
            Err(e) => {
                eprintln!("ipsecpcap: {e}");
                return ExitCode::from(2);
            }
        }
    }
    for p in &common.esp_sa {
        match sa_files::load_esp_sa(p, common.esp_sa_tunnel) {
            Ok(v) => sas.extend(v),
            Err(e) => {
                eprintln!("ipsecpcap: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let opts = Options {
        op,
        input,
        output,
        quiet: common.quiet,
        pass_unmatched: common.pass_unmatched,
        batch: usize::from(common.batch),
        threads: common
            .threads
            .map_or_else(pcaptool::default_threads, usize::from),
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let res = pcaptool::run(&opts, sas, &mut out);
    let flushed = out.flush();
    match res {
        Ok(o) if flushed.is_ok() => {
            if o.failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Ok(_) => ExitCode::from(2),
        Err(e) => {
            eprintln!("ipsecpcap: {e}");
            ExitCode::from(2)
        }
    }
}
