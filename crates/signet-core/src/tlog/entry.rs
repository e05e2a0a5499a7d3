//! Transparency-log entries as Sigstore bundles carry them (`TransparencyLogEntry` of
//! `sigstore/protobuf-specs`, `sigstore_rekor.proto`, in proto3 JSON) and as cosign's legacy
//! `.sig` / `.att` layers carry them (the `dev.sigstore.cosign/bundle` annotation).
//!
//! Parsing checks shapes and bounds only; [`super::verify_entry`] decides what the entry proves.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use super::TlogError;
use super::merkle::TreeHash;

/// The longest canonicalized body accepted, in bytes. Rekor's bodies hold hashes, signatures
/// and a certificate: a few kilobytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The most hashes an inclusion proof may hold: a tree of 2^64 leaves needs 64.
pub const MAX_PROOF_HASHES: usize = 64;
/// The longest signed entry timestamp accepted, in bytes (an RSA-4096 signature is 512).
const MAX_SET_BYTES: usize = 1024;
/// The longest log id accepted, in bytes (Sigstore's are SHA-256 digests).
const MAX_LOG_ID_BYTES: usize = 64;

/// The annotation on a cosign legacy `.sig` / `.att` layer that holds its Rekor bundle: cosign's
/// `BundleAnnotationKey` (pkg/oci/static/signature.go) and `BundleKey`
/// (pkg/oci/internal/signature/layer.go). Unlike the signature annotation
/// (`dev.cosignproject.cosign/signature`), it is under `dev.sigstore.cosign`.
pub const COSIGN_BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// An entry of a transparency log (Rekor), parsed but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub(crate) log_index: u64,
    pub(crate) log_id: Vec<u8>,
    pub(crate) kind_version: Option<(String, String)>,
    pub(crate) integrated_time: Option<u64>,
    pub(crate) signed_entry_timestamp: Option<Vec<u8>>,
    pub(crate) inclusion_proof: Option<InclusionProof>,
    pub(crate) body: Vec<u8>,
}

/// An inclusion proof of an entry, with the checkpoint it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub(crate) log_index: u64,
    pub(crate) root_hash: TreeHash,
    pub(crate) tree_size: u64,
    pub(crate) hashes: Vec<TreeHash>,
    pub(crate) checkpoint: Option<String>,
}

fn malformed(reason: impl Into<String>) -> TlogError {
    TlogError::MalformedEntry {
        reason: reason.into(),
    }
}

/// An int64 of proto3 JSON: a decimal string, or a number. Negative values are refused: no
/// field read here may be negative.
fn uint(value: Option<&Value>, field: &str) -> Result<Option<u64>, TlogError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| malformed(format!("{field} \"{s}\" is not a non-negative integer"))),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| malformed(format!("{field} {n} is not a non-negative integer"))),
        Some(_) => Err(malformed(format!("{field} is not an integer"))),
    }
}

fn required_uint(value: Option<&Value>, field: &str) -> Result<u64, TlogError> {
    uint(value, field)?.ok_or_else(|| malformed(format!("{field} is missing")))
}

/// Bytes of proto3 JSON: standard base64 (URL-safe accepted too, as proto3 parsers do).
fn bytes(value: Option<&Value>, field: &str) -> Result<Option<Vec<u8>>, TlogError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => decode_b64(s)
            .map(Some)
            .ok_or_else(|| malformed(format!("{field} is not base64"))),
        Some(_) => Err(malformed(format!("{field} is not a string"))),
    }
}

pub(crate) fn decode_b64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::URL_SAFE as B64_URL;
    B64.decode(text).or_else(|_| B64_URL.decode(text)).ok()
}

fn check_body(body: Vec<u8>) -> Result<Vec<u8>, TlogError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(TlogError::TooLarge {
            what: "log entry body",
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    if body.is_empty() {
        return Err(malformed("canonicalizedBody is empty"));
    }
    Ok(body)
}

fn check_log_id(log_id: Vec<u8>) -> Result<Vec<u8>, TlogError> {
    if log_id.is_empty() || log_id.len() > MAX_LOG_ID_BYTES {
        return Err(malformed(format!(
            "log id is {} bytes; expected 1 to {MAX_LOG_ID_BYTES}",
            log_id.len()
        )));
    }
    Ok(log_id)
}

fn check_set(set: Vec<u8>) -> Result<Vec<u8>, TlogError> {
    if set.len() > MAX_SET_BYTES {
        return Err(TlogError::TooLarge {
            what: "signed entry timestamp",
            size: set.len(),
            limit: MAX_SET_BYTES,
        });
    }
    Ok(set)
}

fn hash32(text: &str, field: &str) -> Result<TreeHash, TlogError> {
    decode_b64(text)
        .and_then(|raw| raw.try_into().ok())
        .ok_or_else(|| malformed(format!("{field} is not 32 bytes of base64")))
}

impl LogEntry {
    /// Parses one of a bundle's `verificationMaterial.tlogEntries`.
    pub fn from_bundle_json(entry: &Value) -> Result<LogEntry, TlogError> {
        let log_index = required_uint(entry.get("logIndex"), "logIndex")?;
        let log_id = bytes(entry.pointer("/logId/keyId"), "logId.keyId")?
            .ok_or_else(|| malformed("logId.keyId is missing"))?;
        let kind_version = match entry.get("kindVersion") {
            None | Some(Value::Null) => None,
            Some(kv) => {
                let field = |name: &str| {
                    kv.get(name)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| malformed(format!("kindVersion.{name} is not a string")))
                };
                Some((field("kind")?, field("version")?))
            }
        };
        // proto3 omits zero: Rekor v2 entries have no integrated time.
        let integrated_time =
            uint(entry.get("integratedTime"), "integratedTime")?.filter(|t| *t != 0);
        let signed_entry_timestamp = bytes(
            entry.pointer("/inclusionPromise/signedEntryTimestamp"),
            "inclusionPromise.signedEntryTimestamp",
        )?
        .map(check_set)
        .transpose()?;
        let inclusion_proof = match entry.get("inclusionProof") {
            None | Some(Value::Null) => None,
            Some(proof) => Some(InclusionProof::from_json(proof)?),
        };
        let body = bytes(entry.get("canonicalizedBody"), "canonicalizedBody")?
            .ok_or_else(|| malformed("canonicalizedBody is missing"))?;
        Ok(LogEntry {
            log_index,
            log_id: check_log_id(log_id)?,
            kind_version,
            integrated_time,
            signed_entry_timestamp,
            inclusion_proof,
            body: check_body(body)?,
        })
    }

    /// Parses the JSON of a bundle's log entry.
    pub fn parse(json: &[u8]) -> Result<LogEntry, TlogError> {
        let value: Value =
            serde_json::from_slice(json).map_err(|e| malformed(format!("not JSON: {e}")))?;
        LogEntry::from_bundle_json(&value)
    }

    /// Parses cosign's legacy Rekor bundle, the value of the
    /// [`COSIGN_BUNDLE_ANNOTATION`] annotation on a `.sig` or `.att` layer:
    /// `{"SignedEntryTimestamp": b64, "Payload": {"body": b64, "integratedTime": n,
    /// "logIndex": n, "logID": hex}}`. It has a signed entry timestamp and no inclusion proof.
    pub fn from_cosign_bundle_annotation(json: &[u8]) -> Result<LogEntry, TlogError> {
        let value: Value =
            serde_json::from_slice(json).map_err(|e| malformed(format!("not JSON: {e}")))?;
        let set = bytes(value.get("SignedEntryTimestamp"), "SignedEntryTimestamp")?
            .ok_or_else(|| malformed("SignedEntryTimestamp is missing"))?;
        let payload = value
            .get("Payload")
            .ok_or_else(|| malformed("Payload is missing"))?;
        let body = bytes(payload.get("body"), "Payload.body")?
            .ok_or_else(|| malformed("Payload.body is missing"))?;
        let log_id = payload
            .get("logID")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("Payload.logID is not a string"))?;
        let log_id = hex::decode(log_id).map_err(|_| malformed("Payload.logID is not hex"))?;
        Ok(LogEntry {
            log_index: required_uint(payload.get("logIndex"), "Payload.logIndex")?,
            log_id: check_log_id(log_id)?,
            kind_version: None,
            integrated_time: Some(required_uint(
                payload.get("integratedTime"),
                "Payload.integratedTime",
            )?),
            signed_entry_timestamp: Some(check_set(set)?),
            inclusion_proof: None,
            body: check_body(body)?,
        })
    }

    /// The entry's index in the log (for a sharded Rekor v1, across all shards).
    pub fn log_index(&self) -> u64 {
        self.log_index
    }

    /// The id of the log the entry claims to be in.
    pub fn log_id(&self) -> &[u8] {
        &self.log_id
    }

    /// The kind and version the entry declares (`kindVersion`), when it does.
    pub fn kind_version(&self) -> Option<(&str, &str)> {
        self.kind_version
            .as_ref()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The claimed integration time, in seconds since the Unix epoch; `None` when absent or 0
    /// (Rekor v2). Trusted only once a signed entry timestamp over it verified.
    pub fn integrated_time(&self) -> Option<u64> {
        self.integrated_time
    }

    /// Whether the entry has a signed entry timestamp (an inclusion promise).
    pub fn has_inclusion_promise(&self) -> bool {
        self.signed_entry_timestamp.is_some()
    }

    /// The inclusion proof, when the entry has one.
    pub fn inclusion_proof(&self) -> Option<&InclusionProof> {
        self.inclusion_proof.as_ref()
    }

    /// The canonicalized body: the bytes the log hashed as the leaf.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl InclusionProof {
    fn from_json(proof: &Value) -> Result<InclusionProof, TlogError> {
        let log_index = required_uint(proof.get("logIndex"), "inclusionProof.logIndex")?;
        let tree_size = required_uint(proof.get("treeSize"), "inclusionProof.treeSize")?;
        let root_hash = proof
            .get("rootHash")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("inclusionProof.rootHash is not a string"))?;
        let root_hash = hash32(root_hash, "inclusionProof.rootHash")?;
        let hashes = match proof.get("hashes") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(hashes)) => hashes.as_slice(),
            Some(_) => return Err(malformed("inclusionProof.hashes is not a list")),
        };
        if hashes.len() > MAX_PROOF_HASHES {
            return Err(TlogError::TooLarge {
                what: "inclusion proof (hashes)",
                size: hashes.len(),
                limit: MAX_PROOF_HASHES,
            });
        }
        let hashes = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let field = format!("inclusionProof.hashes[{i}]");
                h.as_str()
                    .ok_or_else(|| malformed(format!("{field} is not a string")))
                    .and_then(|h| hash32(h, &field))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Bundles v0.1 predate checkpoints: their proofs have none.
        let checkpoint = match proof.pointer("/checkpoint/envelope") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if c.len() > super::checkpoint::MAX_CHECKPOINT_BYTES => {
                return Err(TlogError::TooLarge {
                    what: "checkpoint",
                    size: c.len(),
                    limit: super::checkpoint::MAX_CHECKPOINT_BYTES,
                });
            }
            Some(Value::String(c)) => Some(c.clone()),
            Some(_) => {
                return Err(malformed(
                    "inclusionProof.checkpoint.envelope is not a string",
                ));
            }
        };
        Ok(InclusionProof {
            log_index,
            root_hash,
            tree_size,
            hashes,
            checkpoint,
        })
    }

    /// The entry's index in the tree the proof is about (for a sharded Rekor v1, in its shard).
    pub fn log_index(&self) -> u64 {
        self.log_index
    }

    /// The size of the tree the proof is about.
    pub fn tree_size(&self) -> u64 {
        self.tree_size
    }

    /// The root hash the proof claims to lead to.
    pub fn root_hash(&self) -> &TreeHash {
        &self.root_hash
    }

    /// The audit path.
    pub fn hashes(&self) -> &[TreeHash] {
        &self.hashes
    }

    /// The checkpoint (signed note) the proof comes with; `None` in bundles older than
    /// checkpoints (v0.1).
    pub fn checkpoint(&self) -> Option<&str> {
        self.checkpoint.as_deref()
    }
}
