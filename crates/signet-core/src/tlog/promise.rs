//! Signed entry timestamps (a bundle's `inclusionPromise`): Rekor v1's signature, made when it
//! accepted an entry, over the entry's body, integration time, log id and index.
//!
//! The signed bytes are the RFC 8785 canonical JSON of
//! `{"body": <canonicalizedBody, base64>, "integratedTime": <int>, "logID": "<log id, hex>",
//! "logIndex": <int>}` (rekor `pkg/api/entries.go`, `signEntry`): keys sorted, no spaces. Every
//! value is an integer or a string with nothing to escape (base64, lower-case hex), so the
//! text is built directly instead of relying on a JSON serialiser's key order.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::TransparencyLog;

/// The bytes a signed entry timestamp signs.
pub(crate) fn signed_bytes(
    body: &[u8],
    integrated_time: u64,
    log_id: &[u8],
    log_index: u64,
) -> Vec<u8> {
    format!(
        "{{\"body\":\"{}\",\"integratedTime\":{integrated_time},\"logID\":\"{}\",\"logIndex\":{log_index}}}",
        B64.encode(body),
        hex::encode(log_id),
    )
    .into_bytes()
}

/// Whether `set` is `log`'s signature over the entry.
pub(crate) fn verifies(
    log: &TransparencyLog,
    set: &[u8],
    body: &[u8],
    integrated_time: u64,
    log_index: u64,
) -> bool {
    log.key()
        .verify(
            &signed_bytes(body, integrated_time, log.log_id(), log_index),
            set,
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_bytes_are_canonical_json() {
        let bytes = signed_bytes(b"{}", 1700000000, &[0xab, 0x01], 42);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap_or_default(),
            r#"{"body":"e30=","integratedTime":1700000000,"logID":"ab01","logIndex":42}"#
        );
        // The same as a sorted-key JSON serialiser writes.
        let value = serde_json::json!({
            "logIndex": 42, "logID": "ab01", "integratedTime": 1700000000u64, "body": "e30=",
        });
        assert_eq!(serde_json::to_vec(&value).unwrap_or_default(), bytes);
    }
}
