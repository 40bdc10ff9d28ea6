//! SA sources: ipseckey(8) files (`add` commands only) and Wireshark `esp_sa` tables, parsed by
//! `ipsec-config`.

use std::path::Path;

use super::SaSource;

/// Loads the `add` commands of an ipseckey file. Any other command is an error naming its line.
pub fn load_ipseckey(path: &Path) -> Result<Vec<SaSource>, String> {
    // INTEGRATION PENDING: ipsec_config::ipseckey::parse_file is not available yet.
    Err(format!(
        "{}: ipseckey files are not supported yet (ipsec-config is not in this build)",
        path.display()
    ))
}

/// Loads a Wireshark `esp_sa` table.
pub fn load_esp_sa(path: &Path) -> Result<Vec<SaSource>, String> {
    // INTEGRATION PENDING: ipsec_config::esp_sa::parse is not available yet.
    Err(format!(
        "{}: esp_sa files are not supported yet (ipsec-config is not in this build)",
        path.display()
    ))
}
