//! The FleetLock wire protocol as zincati specifies it: two `POST` endpoints relative to a base
//! URL, the mandatory `fleet-lock-protocol: true` header, a JSON body naming the node and its
//! group, error bodies `{"kind", "value"}`; plus the rules for groups and node ids, and the
//! app-specific node id zincati derives from `/etc/machine-id` (never the raw machine id).

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Take (or keep) a reboot slot: FleetLock's `RecursiveLock`.
pub const PRE_REBOOT: &str = "v1/pre-reboot";
/// Give the slot back if held: FleetLock's `UnlockIfHeld`.
pub const STEADY_STATE: &str = "v1/steady-state";
/// The header every request carries (value `true`), against accidental redirects.
pub const HEADER: &str = "fleet-lock-protocol";
/// The group a node is in unless configured otherwise.
pub const DEFAULT_GROUP: &str = "default";

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Who asks.
    pub client_params: ClientParams,
}

/// The node and its group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientParams {
    /// The node's id (zincati: 32 lowercase hex digits).
    pub id: String,
    /// The reboot group (`^[a-zA-Z0-9.-]+$`).
    pub group: String,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A short machine-readable label (bounded set).
    pub kind: String,
    /// A message for people.
    pub value: String,
}

/// Whether `group` is a valid group name: one or more of `a-z A-Z 0-9 . -`.
pub fn valid_group(group: &str) -> bool {
    !group.is_empty()
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// Whether `id` is acceptable as a node id: 1 to 256 printable characters, no whitespace.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256 && id.chars().all(|c| c.is_ascii_graphic())
}

impl Request {
    /// A request for `id` in `group`, checked.
    pub fn new(id: &str, group: &str) -> Result<Self> {
        if !valid_id(id) {
            bail!("Invalid FleetLock node id {id:?}: 1 to 256 printable characters");
        }
        if !valid_group(group) {
            bail!("Invalid FleetLock group {group:?}: use letters, digits, '.' and '-'");
        }
        Ok(Self {
            client_params: ClientParams {
                id: id.to_owned(),
                group: group.to_owned(),
            },
        })
    }
}

/// zincati's application id: node ids derived with it match zincati's (and what FleetLock
/// servers such as poseidon/fleetlock compute from a node's machine id).
const APP_ID: [u8; 16] = [
    0xde, 0x35, 0x10, 0x6b, 0x6e, 0xc2, 0x46, 0x88, 0xb6, 0x3a, 0xfd, 0xda, 0xa1, 0x56, 0x67, 0x9b,
];

/// HMAC-SHA256 (RFC 2104) of `message` with a key of at most 64 bytes.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..key.len().min(64)].copy_from_slice(&key[..key.len().min(64)]);
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The node id of the machine whose `/etc/machine-id` holds `machine_id` (32 hex digits):
/// systemd's app-specific id for zincati's application id (`sd_id128_get_machine_app_specific`,
/// an HMAC of the app id keyed with the machine id, made a version-4 UUID), as 32 lowercase hex
/// digits. The raw machine id never leaves the machine.
pub fn node_id(machine_id: &str) -> Result<String> {
    let text = machine_id.trim();
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("Invalid machine id {text:?}: expected 32 hexadecimal digits");
    }
    let mut key = [0u8; 16];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)?;
    }
    let mac = hmac_sha256(&key, &APP_ID);
    let mut id = [0u8; 16];
    id.copy_from_slice(&mac[..16]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    Ok(id.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_match_zincati_and_systemd() {
        // The vector computed with `systemd-id128 machine-id -a de35106b…` for this machine id.
        assert_eq!(
            node_id("0123456789abcdef0123456789abcdef").unwrap(),
            "583627a932274834a8ebd99f4ed41c0d"
        );
        assert_eq!(
            node_id("0123456789ABCDEF0123456789ABCDEF\n").unwrap(),
            "583627a932274834a8ebd99f4ed41c0d"
        );
        assert!(node_id("0123").is_err());
        assert!(node_id(&"g".repeat(32)).is_err());
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn groups_and_ids_are_checked() {
        assert!(valid_group("default") && valid_group("workers.eu-1"));
        assert!(!valid_group("") && !valid_group("a b") && !valid_group("a/b"));
        assert!(Request::new("node-1", "default").is_ok());
        assert!(Request::new("", "default").is_err());
        assert!(Request::new("node 1", "default").is_err());
        assert!(Request::new("node-1", "a_b").is_err());
        let body = serde_json::to_string(&Request::new("n", "g").unwrap()).unwrap();
        assert_eq!(body, r#"{"client_params":{"id":"n","group":"g"}}"#);
    }
}
