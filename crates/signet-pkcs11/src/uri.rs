//! `pkcs11:` URIs (RFC 7512), the way cosign, p11-kit and OpenSSL's pkcs11 provider name keys.
//!
//! `pkcs11:token=signing;object=ci-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234`
//!
//! Path attributes (separated by `;`) select the token and the object; query attributes
//! (separated by `&`) say how to reach them. Values are percent-decoded; `id` is bytes
//! (`id=%01%a2`), everything else UTF-8 text. An attribute signet does not know, or one given
//! twice, is an error rather than ignored: a typo must not select some other key.
//! Spec: <https://www.rfc-editor.org/rfc/rfc7512>.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use secrecy::SecretString;

/// Why a `pkcs11:` URI was refused. Messages never contain a `pin-value`.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum UriError {
    /// The text does not start with `pkcs11:`.
    #[error("not a PKCS#11 URI: it must start with \"pkcs11:\"")]
    NotPkcs11,
    /// An attribute without `=value`.
    #[error("PKCS#11 URI attribute \"{attribute}\" has no \"=value\"")]
    MissingValue {
        /// What was written.
        attribute: String,
    },
    /// An attribute RFC 7512 does not define, or one in the wrong part of the URI.
    #[error("unknown PKCS#11 URI {part} attribute \"{attribute}\": {part} attributes are {known}")]
    UnknownAttribute {
        /// The attribute's name.
        attribute: String,
        /// `path` or `query`.
        part: &'static str,
        /// The attributes allowed there, for the message.
        known: &'static str,
    },
    /// An attribute RFC 7512 defines but signet does not implement.
    #[error("PKCS#11 URI attribute \"{attribute}\" is not supported: {hint}")]
    Unsupported {
        /// The attribute's name.
        attribute: &'static str,
        /// What to use instead.
        hint: &'static str,
    },
    /// The same attribute twice.
    #[error("PKCS#11 URI attribute \"{attribute}\" is given more than once")]
    Duplicate {
        /// The attribute's name.
        attribute: String,
    },
    /// A `%` not followed by two hexadecimal digits.
    #[error("PKCS#11 URI attribute \"{attribute}\": bad percent-encoding")]
    BadPercentEncoding {
        /// The attribute's name.
        attribute: String,
    },
    /// A value that is not what the attribute takes.
    #[error("PKCS#11 URI attribute \"{attribute}\": {reason}")]
    BadValue {
        /// The attribute's name.
        attribute: String,
        /// What is wrong.
        reason: String,
    },
}

/// The kind of object a URI names (`type=`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// `private`: a private key.
    Private,
    /// `public`: a public key.
    Public,
    /// `cert`: a certificate.
    Cert,
    /// `secret-key`: a symmetric key.
    SecretKey,
    /// `data`: a data object.
    Data,
}

impl ObjectType {
    fn as_str(self) -> &'static str {
        match self {
            ObjectType::Private => "private",
            ObjectType::Public => "public",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }
}

/// A parsed `pkcs11:` URI. Every attribute is optional; those given must all match.
///
/// `Debug` and `Display` never show the `pin-value` (it is held as a [`SecretString`]).
#[derive(Default)]
pub struct Pkcs11Uri {
    /// `token`: the token's label.
    pub token: Option<String>,
    /// `manufacturer`: the token's manufacturer.
    pub manufacturer: Option<String>,
    /// `model`: the token's model.
    pub model: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `slot-id`: the slot's number.
    pub slot_id: Option<u64>,
    /// `slot-description`: the slot's description.
    pub slot_description: Option<String>,
    /// `slot-manufacturer`: the slot's manufacturer.
    pub slot_manufacturer: Option<String>,
    /// `library-manufacturer`: the module's manufacturer.
    pub library_manufacturer: Option<String>,
    /// `library-description`: the module's description.
    pub library_description: Option<String>,
    /// `library-version`: the module's version, `major[.minor]`.
    pub library_version: Option<(u8, Option<u8>)>,
    /// `object`: the object's label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `id`: the object's id (`CKA_ID`), bytes.
    pub id: Option<Vec<u8>>,
    /// `type`: the object's class.
    pub object_type: Option<ObjectType>,
    /// `module-path` (query): the PKCS#11 module to load.
    pub module_path: Option<PathBuf>,
    /// `pin-value` (query): the user PIN.
    pub pin_value: Option<SecretString>,
}

const PATH_ATTRIBUTES: &str = "token, manufacturer, model, serial, slot-id, slot-description, \
     slot-manufacturer, library-manufacturer, library-description, library-version, object, id \
     and type";
const QUERY_ATTRIBUTES: &str = "module-path and pin-value";

impl Pkcs11Uri {
    /// Whether `text` is meant as a PKCS#11 URI (starts with `pkcs11:`, in any case), so that
    /// a `--key` argument can be told from a file name.
    pub fn is_pkcs11_uri(text: &str) -> bool {
        text.get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("pkcs11:"))
    }

    /// Whether the URI has any attribute that selects a token.
    pub fn selects_token(&self) -> bool {
        self.token.is_some()
            || self.manufacturer.is_some()
            || self.model.is_some()
            || self.serial.is_some()
            || self.slot_id.is_some()
            || self.slot_description.is_some()
            || self.slot_manufacturer.is_some()
    }

    /// The path attributes that select the object, for messages: `object=ci;id=%01`, or
    /// `(any)`.
    pub fn object_selector(&self) -> String {
        let mut parts = Vec::new();
        if let Some(object) = &self.object {
            parts.push(format!("object={}", encode(object.as_bytes(), false)));
        }
        if let Some(id) = &self.id {
            parts.push(format!("id={}", encode_all(id)));
        }
        if let Some(t) = self.object_type {
            parts.push(format!("type={}", t.as_str()));
        }
        if parts.is_empty() {
            "(any)".into()
        } else {
            parts.join(";")
        }
    }

    /// The path attributes that select the token, for messages: `token=ci;serial=42`, or
    /// `(any)`.
    pub fn token_selector(&self) -> String {
        let mut parts = Vec::new();
        let text = [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("serial", &self.serial),
        ];
        for (name, value) in text {
            if let Some(value) = value {
                parts.push(format!("{name}={}", encode(value.as_bytes(), false)));
            }
        }
        if let Some(slot) = self.slot_id {
            parts.push(format!("slot-id={slot}"));
        }
        for (name, value) in [
            ("slot-description", &self.slot_description),
            ("slot-manufacturer", &self.slot_manufacturer),
        ] {
            if let Some(value) = value {
                parts.push(format!("{name}={}", encode(value.as_bytes(), false)));
            }
        }
        if parts.is_empty() {
            "(any)".into()
        } else {
            parts.join(";")
        }
    }
}

impl FromStr for Pkcs11Uri {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Pkcs11Uri, UriError> {
        if !Pkcs11Uri::is_pkcs11_uri(text) {
            return Err(UriError::NotPkcs11);
        }
        let rest = text.get(7..).unwrap_or_default();
        if rest.contains('#') {
            return Err(UriError::BadValue {
                attribute: "#".into(),
                reason: "a PKCS#11 URI has no fragment; write a literal \"#\" as %23".into(),
            });
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Pkcs11Uri::default();
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (name, raw) = split_attribute(part)?;
            let bytes = decode(name, raw)?;
            match name {
                "token" => set(&mut uri.token, name, text_value(name, bytes)?)?,
                "manufacturer" => set(&mut uri.manufacturer, name, text_value(name, bytes)?)?,
                "model" => set(&mut uri.model, name, text_value(name, bytes)?)?,
                "serial" => set(&mut uri.serial, name, text_value(name, bytes)?)?,
                "slot-description" => {
                    set(&mut uri.slot_description, name, text_value(name, bytes)?)?;
                }
                "slot-manufacturer" => {
                    set(&mut uri.slot_manufacturer, name, text_value(name, bytes)?)?;
                }
                "library-manufacturer" => {
                    set(
                        &mut uri.library_manufacturer,
                        name,
                        text_value(name, bytes)?,
                    )?;
                }
                "library-description" => {
                    set(&mut uri.library_description, name, text_value(name, bytes)?)?;
                }
                "library-version" => {
                    let value = text_value(name, bytes)?;
                    set(&mut uri.library_version, name, parse_version(&value)?)?;
                }
                "slot-id" => {
                    let value = text_value(name, bytes)?;
                    let slot = value.parse::<u64>().map_err(|_| UriError::BadValue {
                        attribute: name.into(),
                        reason: format!("\"{value}\" is not a decimal slot number"),
                    })?;
                    set(&mut uri.slot_id, name, slot)?;
                }
                "object" => set(&mut uri.object, name, text_value(name, bytes)?)?,
                "id" => {
                    if bytes.is_empty() {
                        return Err(UriError::BadValue {
                            attribute: name.into(),
                            reason: "empty id".into(),
                        });
                    }
                    set(&mut uri.id, name, bytes)?;
                }
                "type" => {
                    let value = text_value(name, bytes)?;
                    let t = match value.as_str() {
                        "private" => ObjectType::Private,
                        "public" => ObjectType::Public,
                        "cert" => ObjectType::Cert,
                        "secret-key" => ObjectType::SecretKey,
                        "data" => ObjectType::Data,
                        _ => {
                            return Err(UriError::BadValue {
                                attribute: name.into(),
                                reason: format!(
                                    "\"{value}\" is not one of private, public, cert, \
                                     secret-key, data"
                                ),
                            });
                        }
                    };
                    set(&mut uri.object_type, name, t)?;
                }
                "module-path" | "module-name" | "pin-value" | "pin-source" => {
                    return Err(UriError::UnknownAttribute {
                        attribute: format!("{name} (a query attribute: write it after \"?\")"),
                        part: "path",
                        known: PATH_ATTRIBUTES,
                    });
                }
                _ => {
                    return Err(UriError::UnknownAttribute {
                        attribute: name.into(),
                        part: "path",
                        known: PATH_ATTRIBUTES,
                    });
                }
            }
        }
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (name, raw) = split_attribute(part)?;
            let bytes = decode(name, raw)?;
            match name {
                "module-path" => {
                    let value = text_value(name, bytes)?;
                    if value.is_empty() {
                        return Err(UriError::BadValue {
                            attribute: name.into(),
                            reason: "empty path".into(),
                        });
                    }
                    set(&mut uri.module_path, name, PathBuf::from(value))?;
                }
                "pin-value" => {
                    // Never in a message: only the attribute's name.
                    let pin = String::from_utf8(bytes).map_err(|_| UriError::BadValue {
                        attribute: name.into(),
                        reason: "not UTF-8".into(),
                    })?;
                    if uri.pin_value.is_some() {
                        return Err(UriError::Duplicate {
                            attribute: name.into(),
                        });
                    }
                    uri.pin_value = Some(SecretString::from(pin));
                }
                "module-name" => {
                    return Err(UriError::Unsupported {
                        attribute: "module-name",
                        hint: "give the module's file with module-path=",
                    });
                }
                "pin-source" => {
                    return Err(UriError::Unsupported {
                        attribute: "pin-source",
                        hint: "give the PIN in SIGNET_PKCS11_PIN (or pin-value=)",
                    });
                }
                _ => {
                    return Err(UriError::UnknownAttribute {
                        attribute: name.into(),
                        part: "query",
                        known: QUERY_ATTRIBUTES,
                    });
                }
            }
        }
        Ok(uri)
    }
}

fn split_attribute(part: &str) -> Result<(&str, &str), UriError> {
    part.split_once('=').ok_or_else(|| UriError::MissingValue {
        attribute: part.chars().take(64).collect(),
    })
}

fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), UriError> {
    if slot.is_some() {
        return Err(UriError::Duplicate {
            attribute: name.into(),
        });
    }
    *slot = Some(value);
    Ok(())
}

fn decode(name: &str, raw: &str) -> Result<Vec<u8>, UriError> {
    let bad = || UriError::BadPercentEncoding {
        attribute: name.into(),
    };
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else if b.is_ascii_control() {
            return Err(UriError::BadValue {
                attribute: name.into(),
                reason: "control characters must be percent-encoded".into(),
            });
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

fn text_value(name: &str, bytes: Vec<u8>) -> Result<String, UriError> {
    String::from_utf8(bytes).map_err(|_| UriError::BadValue {
        attribute: name.into(),
        reason: "not UTF-8 once percent-decoded".into(),
    })
}

fn parse_version(value: &str) -> Result<(u8, Option<u8>), UriError> {
    let bad = || UriError::BadValue {
        attribute: "library-version".into(),
        reason: format!("\"{value}\" is not MAJOR or MAJOR.MINOR"),
    };
    match value.split_once('.') {
        Some((major, minor)) => Ok((
            major.parse().map_err(|_| bad())?,
            Some(minor.parse().map_err(|_| bad())?),
        )),
        None => Ok((value.parse().map_err(|_| bad())?, None)),
    }
}

/// Percent-encodes `bytes`, leaving RFC 3986's unreserved characters (and `/` in query
/// values, for readable module paths).
fn encode(bytes: &[u8], query: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (query && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes every byte: ids are binary, and `%01%A2` is how every tool writes them.
fn encode_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// The canonical form: path attributes in RFC 7512's order, then the query; a `pin-value` is
/// written as `pin-value=<redacted>`, never as itself.
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = Vec::new();
        let text = [
            ("library-manufacturer", &self.library_manufacturer),
            ("library-description", &self.library_description),
        ];
        for (name, value) in text {
            if let Some(value) = value {
                path.push(format!("{name}={}", encode(value.as_bytes(), false)));
            }
        }
        if let Some((major, minor)) = self.library_version {
            path.push(match minor {
                Some(minor) => format!("library-version={major}.{minor}"),
                None => format!("library-version={major}"),
            });
        }
        if self.selects_token() {
            path.push(self.token_selector());
        }
        if self.object.is_some() || self.id.is_some() || self.object_type.is_some() {
            path.push(self.object_selector());
        }
        write!(f, "pkcs11:{}", path.join(";"))?;
        let mut query = Vec::new();
        if let Some(module) = &self.module_path {
            query.push(format!(
                "module-path={}",
                encode(module.to_string_lossy().as_bytes(), true)
            ));
        }
        if self.pin_value.is_some() {
            query.push("pin-value=<redacted>".into());
        }
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pkcs11Uri").field(&self.to_string()).finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    fn parse(text: &str) -> Pkcs11Uri {
        text.parse().unwrap()
    }

    fn error(text: &str) -> UriError {
        text.parse::<Pkcs11Uri>().unwrap_err()
    }

    #[test]
    fn cosign_forms_parse() {
        let uri = parse("pkcs11:token=T;object=LABEL");
        assert_eq!(uri.token.as_deref(), Some("T"));
        assert_eq!(uri.object.as_deref(), Some("LABEL"));
        assert!(uri.id.is_none() && uri.module_path.is_none() && uri.pin_value.is_none());

        let uri = parse(
            "pkcs11:token=T;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
        );
        assert_eq!(uri.id.as_deref(), Some(&[1u8][..]));
        assert_eq!(
            uri.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert_eq!(uri.pin_value.unwrap().expose_secret(), "1234");
    }

    #[test]
    fn values_are_percent_decoded_and_ids_are_bytes() {
        let uri = parse("pkcs11:token=My%20Token;object=a%3bb;id=%A2%00x;serial=0123");
        assert_eq!(uri.token.as_deref(), Some("My Token"));
        assert_eq!(uri.object.as_deref(), Some("a;b"));
        assert_eq!(uri.id.as_deref(), Some(&[0xa2, 0x00, b'x'][..]));
        assert_eq!(uri.serial.as_deref(), Some("0123"));
        // The scheme is case-insensitive, as every URI scheme.
        assert_eq!(parse("PKCS11:token=T").token.as_deref(), Some("T"));
        assert!(parse("pkcs11:").token.is_none());
    }

    #[test]
    fn every_rfc_path_attribute_parses() {
        let uri = parse(
            "pkcs11:library-manufacturer=SoftHSM;library-description=Implementation%20of%20PKCS11;\
             library-version=2.6;manufacturer=SoftHSM%20project;model=SoftHSM%20v2;serial=42;\
             token=T;slot-id=7;slot-description=S;slot-manufacturer=M;object=o;id=%01;type=private",
        );
        assert_eq!(uri.library_version, Some((2, Some(6))));
        assert_eq!(uri.slot_id, Some(7));
        assert_eq!(uri.object_type, Some(ObjectType::Private));
        assert_eq!(uri.model.as_deref(), Some("SoftHSM v2"));
    }

    #[test]
    fn unknown_duplicate_and_misplaced_attributes_are_errors() {
        assert!(matches!(
            error("pkcs11:token=T;label=x"),
            UriError::UnknownAttribute { part: "path", .. }
        ));
        assert!(matches!(
            error("pkcs11:token=T?module=x"),
            UriError::UnknownAttribute { part: "query", .. }
        ));
        assert!(matches!(
            error("pkcs11:token=T;object=a;object=b"),
            UriError::Duplicate { .. }
        ));
        assert!(matches!(
            error("pkcs11:token=T?pin-value=1&pin-value=2"),
            UriError::Duplicate { .. }
        ));
        let misplaced = error("pkcs11:token=T;module-path=/x.so").to_string();
        assert!(misplaced.contains("query attribute"), "{misplaced}");
        assert!(matches!(
            error("pkcs11:token"),
            UriError::MissingValue { .. }
        ));
        assert_eq!(error("/tmp/key.pem"), UriError::NotPkcs11);
        assert!(matches!(
            error("pkcs11:token=T?pin-source=file:/pin"),
            UriError::Unsupported { .. }
        ));
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(matches!(
            error("pkcs11:token=%4"),
            UriError::BadPercentEncoding { .. }
        ));
        assert!(matches!(
            error("pkcs11:token=%zz"),
            UriError::BadPercentEncoding { .. }
        ));
        assert!(matches!(
            error("pkcs11:token=%ff"),
            UriError::BadValue { .. }
        ));
        assert!(matches!(
            error("pkcs11:slot-id=one"),
            UriError::BadValue { .. }
        ));
        assert!(matches!(
            error("pkcs11:type=key"),
            UriError::BadValue { .. }
        ));
        assert!(matches!(error("pkcs11:id="), UriError::BadValue { .. }));
        assert!(matches!(
            error("pkcs11:token=a#b"),
            UriError::BadValue { .. }
        ));
        assert!(matches!(
            error("pkcs11:library-version=2.x"),
            UriError::BadValue { .. }
        ));
    }

    #[test]
    fn the_pin_never_shows_in_display_debug_or_errors() {
        let uri = parse("pkcs11:token=T;object=k?pin-value=s3cr3t-pin");
        assert!(!uri.to_string().contains("s3cr3t"));
        assert!(!format!("{uri:?}").contains("s3cr3t"));
        assert!(uri.to_string().ends_with("?pin-value=<redacted>"));
        let err = error("pkcs11:token=T?pin-value=s3cr3t&pin-value=x").to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn display_round_trips() {
        let text =
            "pkcs11:token=My%20Token;object=ci%2Fkey;id=%01%A2?module-path=/usr/lib/x%20y.so";
        let uri = parse(text);
        assert_eq!(uri.to_string(), text);
        let again = parse(&uri.to_string());
        assert_eq!(again.token, uri.token);
        assert_eq!(again.id, uri.id);
        assert_eq!(again.module_path, uri.module_path);
    }
}
