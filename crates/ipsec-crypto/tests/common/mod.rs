//! A reader for the vector files in `tests/vectors/`.
//!
//! Format: `# comment` lines; `[case name]` starts a case; `field = value`
//! lines, continued on following indented lines. A value is hex (whitespace
//! ignored), a "quoted ASCII string", `repeat(XX, N)` (N octets XX), or empty.

#![allow(dead_code)]
// Test-support code: a malformed vector file should fail the test loudly.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub struct Case {
    pub name: String,
    fields: Vec<(String, String)>,
}

impl Case {
    pub fn text(&self, field: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("case {:?} has no field {field:?}", self.name))
    }

    pub fn has(&self, field: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == field)
    }

    pub fn bytes(&self, field: &str) -> Vec<u8> {
        decode(self.text(field))
            .unwrap_or_else(|e| panic!("case {:?} field {field:?}: {e}", self.name))
    }
}

fn decode(v: &str) -> Result<Vec<u8>, String> {
    let v = v.trim();
    if let Some(s) = v.strip_prefix('"') {
        let s = s.strip_suffix('"').ok_or("unterminated string")?;
        return Ok(s.as_bytes().to_vec());
    }
    if let Some(args) = v.strip_prefix("repeat(") {
        let args = args.strip_suffix(')').ok_or("bad repeat")?;
        let (byte, n) = args.split_once(',').ok_or("bad repeat")?;
        let byte = u8::from_str_radix(byte.trim(), 16).map_err(|e| e.to_string())?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string())?;
        return Ok(vec![byte; n]);
    }
    let hex: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(hex).map_err(|e| e.to_string())
}

pub fn load(src: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for raw in src.lines() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[') {
            cases.push(Case {
                name: name.trim_end_matches(']').to_string(),
                fields: Vec::new(),
            });
            continue;
        }
        let case = cases.last_mut().expect("field before any [case]");
        if raw.starts_with(char::is_whitespace) {
            let last = case
                .fields
                .last_mut()
                .expect("continuation before any field");
            last.1.push(' ');
            last.1.push_str(trimmed);
        } else {
            let (k, v) = trimmed.split_once('=').expect("field line without '='");
            case.fields
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    assert!(!cases.is_empty(), "no cases in vector file");
    cases
}
