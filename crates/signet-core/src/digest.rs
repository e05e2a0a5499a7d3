//! Content digests (`sha256:<hex>`, `sha512:<hex>`), as used by OCI registries.
//!
//! A [`Digest`] is parsed once, at the edge, and carried as a type from then on: its algorithm
//! is one we can compute and its hex has the right length and is lowercase, as the
//! [OCI image spec](https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests)
//! requires for the registered algorithms.
//!
//! ```
//! use signet_core::digest::Digest;
//!
//! let d: Digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
//!     .parse()
//!     .unwrap();
//! assert_eq!(d, Digest::sha256_of(b"{}"));
//! assert!(d.verify(b"{}").is_ok());
//! assert!(d.verify(b"{ }").is_err());
//! assert_eq!(d.fallback_tag(), format!("sha256-{}", d.hex()));
//! ```

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A digest algorithm signet can compute and verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the algorithm nearly every registry uses.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as written in a digest: `"sha256"` or `"sha512"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// The number of hex characters in a digest of this algorithm: 64 or 128.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    /// Parses `"sha256"` or `"sha512"` (lowercase, as the OCI spec registers them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(Self::Sha256),
            "sha512" => Ok(Self::Sha512),
            _ => Err(DigestError::UnsupportedAlgorithm {
                algorithm: s.to_owned(),
            }),
        }
    }
}

/// Why a digest failed to parse or to verify.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum DigestError {
    /// The digest string was empty.
    #[error("empty digest")]
    Empty,
    /// There was no `<algorithm>:` prefix.
    #[error("digest {input:?} has no algorithm prefix (expected \"sha256:<hex>\")")]
    MissingAlgorithm {
        /// The text that was given.
        input: String,
    },
    /// The algorithm is not one signet supports.
    #[error("unsupported digest algorithm {algorithm:?} (expected sha256 or sha512)")]
    UnsupportedAlgorithm {
        /// The algorithm as written.
        algorithm: String,
    },
    /// The hex part has the wrong number of characters for its algorithm.
    #[error("{algorithm} digest must have {expected} hex characters, got {got}")]
    BadLength {
        /// The digest's algorithm.
        algorithm: Algorithm,
        /// How many hex characters that algorithm needs.
        expected: usize,
        /// How many characters there were.
        got: usize,
    },
    /// The hex part has an uppercase hex letter; digests must be lowercase.
    #[error(
        "invalid character {character:?} at position {position} of digest hex: digests must be lowercase"
    )]
    UppercaseHex {
        /// The offending character.
        character: char,
        /// Its character position within the hex part, from 0.
        position: usize,
    },
    /// The hex part has a character that is not a hex digit.
    #[error(
        "invalid character {character:?} at position {position} of digest hex (expected 0-9 or a-f)"
    )]
    InvalidHex {
        /// The offending character.
        character: char,
        /// Its character position within the hex part, from 0.
        position: usize,
    },
    /// The content hashes to a different digest than the expected one.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    Mismatch {
        /// The digest the content should have had.
        expected: Digest,
        /// The digest the content actually has.
        actual: Digest,
    },
}

/// A content digest: an [`Algorithm`] and the lowercase hex of the hash.
///
/// Constructed only by parsing ([`FromStr`], serde) or hashing ([`Digest::of`]), so its hex
/// always has the algorithm's length and is lowercase. `Display` and serde use the
/// `algorithm:hex` form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Hashes `bytes` with `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let hex = match algorithm {
            Algorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
            Algorithm::Sha512 => hex::encode(Sha512::digest(bytes)),
        };
        Self { algorithm, hex }
    }

    /// Hashes `bytes` with SHA-256.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self::of(Algorithm::Sha256, bytes)
    }

    /// Builds a digest from an algorithm and its hex, checking length and case.
    pub fn from_hex(algorithm: Algorithm, hex: &str) -> Result<Self, DigestError> {
        // Check characters before length, so that "sha256:ABC…" says "must be lowercase"
        // rather than only counting.
        for (position, character) in hex.chars().enumerate() {
            match character {
                '0'..='9' | 'a'..='f' => {}
                'A'..='F' => {
                    return Err(DigestError::UppercaseHex {
                        character,
                        position,
                    });
                }
                _ => {
                    return Err(DigestError::InvalidHex {
                        character,
                        position,
                    });
                }
            }
        }
        // All characters are ASCII here, so the byte length is the character count.
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::BadLength {
                algorithm,
                expected: algorithm.hex_len(),
                got: hex.len(),
            });
        }
        Ok(Self {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// The digest's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex of the hash, without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Checks that `bytes` hash to this digest (with this digest's algorithm).
    pub fn verify(&self, bytes: &[u8]) -> Result<(), DigestError> {
        let actual = Self::of(self.algorithm, bytes);
        if actual == *self {
            Ok(())
        } else {
            Err(DigestError::Mismatch {
                expected: self.clone(),
                actual,
            })
        }
    }

    /// The tag under which registries without the referrers API keep this digest's referrers
    /// index: `<alg>-<hex>`, e.g. `sha256-44136f…`
    /// ([OCI distribution spec, referrers tag schema](https://github.com/opencontainers/distribution-spec/blob/main/spec.md#referrers-tag-schema)).
    pub fn fallback_tag(&self) -> String {
        format!("{}-{}", self.algorithm, self.hex)
    }

    /// A shortened form for messages to people: the algorithm and the first 12 hex
    /// characters, e.g. `sha256:44136fa355b3`. Never use it to identify content.
    pub fn short(&self) -> String {
        // The hex is at least 64 ASCII characters (checked when constructed), so 12 is in range
        // and on a character boundary; `get` keeps this panic-free regardless.
        let prefix = self.hex.get(..12).unwrap_or(&self.hex);
        format!("{}:{prefix}", self.algorithm)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    /// Parses `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(DigestError::Empty);
        }
        let Some((algorithm, hex)) = s.split_once(':') else {
            return Err(DigestError::MissingAlgorithm {
                input: s.to_owned(),
            });
        };
        if algorithm.is_empty() {
            return Err(DigestError::MissingAlgorithm {
                input: s.to_owned(),
            });
        }
        Self::from_hex(algorithm.parse()?, hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC_SHA256: &str =
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const ABC_SHA512: &str = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
    const OCI_EMPTY_JSON: &str =
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn d(s: &str) -> Digest {
        s.parse().unwrap()
    }

    #[test]
    fn known_answers() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY_SHA256);
        assert_eq!(Digest::sha256_of(b"abc").to_string(), ABC_SHA256);
        assert_eq!(
            Digest::of(Algorithm::Sha512, b"abc").to_string(),
            ABC_SHA512
        );
        assert_eq!(Digest::sha256_of(b"{}").to_string(), OCI_EMPTY_JSON);
    }

    #[test]
    fn parse_display_round_trip() {
        for s in [EMPTY_SHA256, ABC_SHA256, ABC_SHA512, OCI_EMPTY_JSON] {
            let parsed = d(s);
            assert_eq!(parsed.to_string(), s);
            assert_eq!(format!("{}:{}", parsed.algorithm(), parsed.hex()), s);
        }
        assert_eq!(d(ABC_SHA512).algorithm(), Algorithm::Sha512);
        assert_eq!(d(ABC_SHA512).hex().len(), Algorithm::Sha512.hex_len());
    }

    #[test]
    fn algorithm_names_and_lengths() {
        assert_eq!(Algorithm::Sha256.as_str(), "sha256");
        assert_eq!(Algorithm::Sha512.as_str(), "sha512");
        assert_eq!(Algorithm::Sha256.hex_len(), 64);
        assert_eq!(Algorithm::Sha512.hex_len(), 128);
        assert_eq!("sha512".parse::<Algorithm>().unwrap(), Algorithm::Sha512);
    }

    #[test]
    fn verify_accepts_matching_bytes() {
        assert!(d(ABC_SHA256).verify(b"abc").is_ok());
        assert!(d(ABC_SHA512).verify(b"abc").is_ok());
    }

    #[test]
    fn verify_reports_mismatch_with_same_algorithm() {
        let err = d(ABC_SHA512).verify(b"abd").unwrap_err();
        let DigestError::Mismatch { expected, actual } = &err else {
            panic!("expected a mismatch, got {err:?}");
        };
        assert_eq!(expected, &d(ABC_SHA512));
        assert_eq!(actual, &Digest::of(Algorithm::Sha512, b"abd"));

        let err = d(EMPTY_SHA256).verify(b"abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("digest mismatch: expected {EMPTY_SHA256}, got {ABC_SHA256}")
        );
    }

    #[test]
    fn fallback_tag_and_short() {
        let digest = d(OCI_EMPTY_JSON);
        assert_eq!(
            digest.fallback_tag(),
            "sha256-44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(digest.short(), "sha256:44136fa355b3");
        assert_eq!(d(ABC_SHA512).short(), "sha512:ddaf35a19361");
    }

    #[test]
    fn rejects_empty() {
        assert_eq!("".parse::<Digest>(), Err(DigestError::Empty));
    }

    #[test]
    fn rejects_missing_algorithm() {
        let hex = &EMPTY_SHA256["sha256:".len()..];
        for input in [hex, &format!(":{hex}")] {
            let err = input.parse::<Digest>().unwrap_err();
            assert!(
                matches!(err, DigestError::MissingAlgorithm { .. }),
                "{input}: {err:?}"
            );
            assert!(err.to_string().contains("no algorithm prefix"), "{err}");
        }
    }

    #[test]
    fn rejects_unknown_algorithm_by_name() {
        let err = "md5:d41d8cd98f00b204e9800998ecf8427e"
            .parse::<Digest>()
            .unwrap_err();
        assert_eq!(
            err,
            DigestError::UnsupportedAlgorithm {
                algorithm: "md5".into()
            }
        );
        assert!(err.to_string().contains("\"md5\""), "{err}");
        // Algorithm names are case-sensitive.
        let err = EMPTY_SHA256.replace("sha256", "SHA256").parse::<Digest>();
        assert!(matches!(err, Err(DigestError::UnsupportedAlgorithm { .. })));
    }

    #[test]
    fn rejects_wrong_length_saying_expected_and_got() {
        let short = &EMPTY_SHA256[..EMPTY_SHA256.len() - 1];
        let err = short.parse::<Digest>().unwrap_err();
        assert_eq!(
            err,
            DigestError::BadLength {
                algorithm: Algorithm::Sha256,
                expected: 64,
                got: 63
            }
        );
        assert_eq!(
            err.to_string(),
            "sha256 digest must have 64 hex characters, got 63"
        );
        // A sha256-length hex under sha512.
        let err = EMPTY_SHA256
            .replace("sha256", "sha512")
            .parse::<Digest>()
            .unwrap_err();
        assert!(
            err.to_string().contains("128 hex characters, got 64"),
            "{err}"
        );
        assert!(matches!(
            "sha256:".parse::<Digest>(),
            Err(DigestError::BadLength { got: 0, .. })
        ));
    }

    #[test]
    fn rejects_uppercase_hex() {
        let err = EMPTY_SHA256
            .replace('e', "E")
            .parse::<Digest>()
            .unwrap_err();
        assert_eq!(
            err,
            DigestError::UppercaseHex {
                character: 'E',
                position: 0
            }
        );
        assert!(err.to_string().contains("must be lowercase"), "{err}");
    }

    #[test]
    fn rejects_non_hex_characters() {
        let err = EMPTY_SHA256
            .replace('c', "g")
            .parse::<Digest>()
            .unwrap_err();
        assert_eq!(
            err,
            DigestError::InvalidHex {
                character: 'g',
                position: 4
            }
        );
        // Non-ASCII does not panic on slicing and is reported by character.
        let err = "sha256:é".parse::<Digest>().unwrap_err();
        assert!(matches!(
            err,
            DigestError::InvalidHex {
                character: 'é', ..
            }
        ));
        // A second colon is just another invalid character.
        let err = format!("{EMPTY_SHA256}:x").parse::<Digest>().unwrap_err();
        assert!(matches!(
            err,
            DigestError::InvalidHex { character: ':', .. }
        ));
    }

    #[test]
    fn serde_uses_the_string_form_and_validates() {
        let digest = d(ABC_SHA256);
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json, format!("\"{ABC_SHA256}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);

        let err = serde_json::from_str::<Digest>("\"sha256:abc\"").unwrap_err();
        assert!(err.to_string().contains("64 hex characters"), "{err}");
        assert!(serde_json::from_str::<Digest>("42").is_err());
    }
}
