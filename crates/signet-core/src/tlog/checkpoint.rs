//! Checkpoints: a log's signed statement of its size and root hash, in the signed-note format
//! (<https://github.com/C2SP/C2SP/blob/main/signed-note.md>, body per
//! <https://github.com/C2SP/C2SP/blob/main/tlog-checkpoint.md>).
//!
//! ```text
//! rekor.sigstore.dev - 1193050959916656506      origin
//! 1139201557                                    tree size
//! 5TL0Mxvnr3yIzxCbPpqTBgL43oHrw/9aGPCWOwBEnXs=  root hash
//!                                               (optional extension lines, then a blank line)
//! — rekor.sigstore.dev wNI9ajBFAiEA…            signature lines: name, base64(key hint || sig)
//! ```
//!
//! The signed text is the note up to and including the newline before the blank line. The key
//! hint is 4 bytes; Sigstore's clients (sigstore-go, sigstore-python) match it against the
//! first 4 bytes of the log id the trusted root gives, which for Rekor v1 is the SHA-256 of the
//! log's DER public key and for Rekor v2 is the signed-note key id itself.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::TlogError;
use super::TransparencyLog;
use super::merkle::TreeHash;

/// The longest checkpoint accepted, in bytes. Rekor's are about 200; witnessed ones grow by a
/// line per cosigner.
pub const MAX_CHECKPOINT_BYTES: usize = 16 * 1024;
/// The most signature lines looked at (the signed-note spec lets verifiers stop at 100).
const MAX_SIGNATURES: usize = 32;
/// The em dash and space that open a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A parsed, not yet verified checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root_hash: TreeHash,
    signed_text: String,
    signatures: Vec<NoteSignature>,
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NoteSignature {
    name: String,
    key_hint: [u8; 4],
    signature: Vec<u8>,
}

fn malformed(reason: impl Into<String>) -> TlogError {
    TlogError::MalformedCheckpoint {
        reason: reason.into(),
    }
}

impl Checkpoint {
    /// Parses a checkpoint note.
    pub fn parse(text: &str) -> Result<Checkpoint, TlogError> {
        if text.len() > MAX_CHECKPOINT_BYTES {
            return Err(TlogError::TooLarge {
                what: "checkpoint",
                size: text.len(),
                limit: MAX_CHECKPOINT_BYTES,
            });
        }
        let split = text
            .find("\n\n")
            .ok_or_else(|| malformed("no blank line between the body and the signatures"))?;
        // The signed text keeps the newline that ends its last line.
        let (signed_text, rest) = text.split_at(split + 1);
        let signature_block = &rest[1..];

        let mut lines = signed_text.lines();
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| malformed("no origin line"))?;
        let size_line = lines.next().ok_or_else(|| malformed("no tree size line"))?;
        if size_line.is_empty() || !size_line.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(format!(
                "tree size \"{size_line}\" is not a decimal number"
            )));
        }
        let size: u64 = size_line
            .parse()
            .map_err(|_| malformed(format!("tree size {size_line} is out of range")))?;
        let root_line = lines.next().ok_or_else(|| malformed("no root hash line"))?;
        let root_hash: TreeHash = B64
            .decode(root_line)
            .ok()
            .and_then(|raw| raw.try_into().ok())
            .ok_or_else(|| malformed("root hash is not 32 bytes of base64"))?;

        if signature_block.is_empty() {
            return Err(malformed("no signature lines"));
        }
        if !signature_block.ends_with('\n') {
            return Err(malformed("the last signature line has no newline"));
        }
        let mut signatures = Vec::new();
        for line in signature_block.lines() {
            if signatures.len() == MAX_SIGNATURES {
                break;
            }
            let line = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| malformed(format!("\"{line}\" is not a signature line")))?;
            let (name, sig) = line
                .rsplit_once(' ')
                .ok_or_else(|| malformed("a signature line has no key name"))?;
            let raw = B64
                .decode(sig)
                .map_err(|_| malformed(format!("the signature by {name} is not base64")))?;
            if raw.len() <= 4 {
                return Err(malformed(format!("the signature by {name} is too short")));
            }
            let (hint, signature) = raw.split_at(4);
            signatures.push(NoteSignature {
                name: name.to_string(),
                // Four bytes by the split above.
                key_hint: [hint[0], hint[1], hint[2], hint[3]],
                signature: signature.to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(malformed("no signature lines"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root_hash,
            signed_text: signed_text.to_string(),
            signatures,
        })
    }

    /// The origin line (the log's name, for Rekor v1 with its tree id).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The tree size the log vouches for.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash the log vouches for.
    pub fn root_hash(&self) -> &TreeHash {
        &self.root_hash
    }

    /// Finds the log among `logs` that signed this checkpoint: a signature line whose key hint
    /// is the first 4 bytes of the log's id and whose signature verifies with the log's key.
    pub(crate) fn signer<'a>(
        &self,
        logs: &'a [TransparencyLog],
    ) -> Result<&'a TransparencyLog, TlogError> {
        let mut failed = None;
        for sig in &self.signatures {
            for log in logs {
                if log.log_id().get(..4) != Some(&sig.key_hint[..]) {
                    continue;
                }
                if log
                    .key()
                    .verify(self.signed_text.as_bytes(), &sig.signature)
                    .is_ok()
                {
                    return Ok(log);
                }
                failed.get_or_insert(log);
            }
        }
        match failed {
            Some(log) => Err(TlogError::CheckpointSignatureInvalid {
                log: log.name().to_string(),
            }),
            None => Err(TlogError::CheckpointSignedByNoLog {
                signers: self
                    .signatures
                    .iter()
                    .map(|s| format!("{} (key hint {})", s.name, hex::encode(s.key_hint)))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const REKOR: &str = "rekor.sigstore.dev - 1193050959916656506\n1139201557\n5TL0Mxvnr3yIzxCbPpqTBgL43oHrw/9aGPCWOwBEnXs=\n\n\u{2014} rekor.sigstore.dev wNI9ajBFAiEA2ZtI6/Od0hQZ45WjHDtg7dzPOX6athjTQU9CwYBPClICIHaNmJ9dVWyL4pa8Za4VKB96uqFLjvMVsI7vOZl4Vq81\n";

    #[test]
    fn parses_a_rekor_v1_checkpoint() {
        let c = Checkpoint::parse(REKOR).unwrap();
        assert_eq!(c.origin(), "rekor.sigstore.dev - 1193050959916656506");
        assert_eq!(c.size(), 1139201557);
        assert_eq!(
            B64.encode(c.root_hash()),
            "5TL0Mxvnr3yIzxCbPpqTBgL43oHrw/9aGPCWOwBEnXs="
        );
        assert_eq!(
            c.signed_text,
            "rekor.sigstore.dev - 1193050959916656506\n1139201557\n5TL0Mxvnr3yIzxCbPpqTBgL43oHrw/9aGPCWOwBEnXs=\n"
        );
        assert_eq!(c.signatures.len(), 1);
        assert_eq!(c.signatures[0].name, "rekor.sigstore.dev");
        assert_eq!(hex::encode(c.signatures[0].key_hint), "c0d23d6a");
    }

    #[test]
    fn extension_lines_are_signed_but_not_interpreted() {
        let text = "o\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nTimestamp: 1\n\n\u{2014} o AAAAAAAA\n";
        let c = Checkpoint::parse(text).unwrap();
        assert_eq!(c.size(), 5);
        assert!(c.signed_text.ends_with("Timestamp: 1\n"));
    }

    #[test]
    fn malformed_checkpoints_are_refused() {
        let root = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        for (text, why) in [
            (format!("o\n5\n{root}\n"), "no blank line"),
            (format!("o\n5\n{root}\n\n"), "no signature lines"),
            (format!("o\n-5\n{root}\n\n\u{2014} o AAAAAAAA\n"), "decimal"),
            (
                "o\n5\nAAAA\n\n\u{2014} o AAAAAAAA\n".to_string(),
                "32 bytes",
            ),
            (
                format!("o\n5\n{root}\n\n- o AAAAAAAA\n"),
                "not a signature line",
            ),
            (format!("o\n5\n{root}\n\n\u{2014} o AAAA\n"), "too short"),
            (format!("o\n5\n{root}\n\n\u{2014} o AAAAAAAA"), "no newline"),
            (
                format!("\n5\n{root}\n\n\u{2014} o AAAAAAAA\n"),
                "no origin line",
            ),
        ] {
            let err = Checkpoint::parse(&text).unwrap_err().to_string();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}
