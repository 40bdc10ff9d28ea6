#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use ipsec_pfkey::fuzz_support::*;

#[test]
fn seeds_pass_the_fuzz_body() {
    let e = fixture();
    assert_eq!(e.sadb().len(), 4, "{e:?}");
    for (name, m) in seed_messages() {
        let b = m.emit().unwrap_or_else(|err| panic!("{name}: {err}"));
        pfkey_decode(&b).unwrap_or_else(|err| panic!("{name}: {err}"));
        let mut e = fixture();
        e.handle(2000, FUZZ_CLIENT, &b);
        let out: Vec<_> = std::iter::from_fn(|| e.poll_output()).collect();
        let msgs: Vec<_> = out
            .iter()
            .map(|o| ipsec_pfkey::Message::parse(&o.bytes).unwrap())
            .collect();
        eprintln!(
            "{name}: {}",
            msgs.iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
}
