//! A loaded PKCS#11 module: its tokens, choosing one by URI, logging in, and listing keys.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;

use crate::error::Pkcs11Error;
use crate::uri::Pkcs11Uri;

/// Most objects read from one search: a token with more keys than this is listed in part.
const MAX_OBJECTS: usize = 1024;

/// A PKCS#11 module (the vendor's shared library), loaded and initialised.
///
/// Finalised when the last [`Module`], session or signer made from it is dropped.
pub struct Module {
    ctx: Pkcs11,
    path: PathBuf,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("path", &self.path).finish()
    }
}

/// One slot with a token, as `signet pkcs11 tokens` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The slot's number (`slot-id=`).
    pub slot_id: u64,
    /// The slot's description.
    pub slot_description: String,
    /// The slot's manufacturer.
    pub slot_manufacturer: String,
    /// The token's label (`token=`).
    pub label: String,
    /// The token's manufacturer (`manufacturer=`).
    pub manufacturer: String,
    /// The token's model (`model=`).
    pub model: String,
    /// The token's serial number (`serial=`).
    pub serial: String,
    /// Whether the token has been initialised.
    pub initialized: bool,
    /// Whether private objects need a login (the user PIN).
    pub login_required: bool,
    /// Whether the user PIN is locked.
    pub pin_locked: bool,
}

impl TokenInfo {
    /// `"label" (serial S)`, for messages.
    pub fn describe(&self) -> String {
        format!("\"{}\" (serial {})", self.label, self.serial)
    }
}

/// The class of a key object.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClass {
    /// A private key: what signs.
    Private,
    /// A public key.
    Public,
}

/// One key object in a token, as `signet pkcs11 keys` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Private or public.
    pub class: KeyClass,
    /// `CKA_LABEL` (lossy UTF-8).
    pub label: String,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// `EC P-256`, `EC P-384`, `RSA 2048`, or what the token says otherwise.
    pub key_type: String,
    /// `CKA_SENSITIVE` (private keys).
    pub sensitive: Option<bool>,
    /// `CKA_EXTRACTABLE` (private keys).
    pub extractable: Option<bool>,
    /// The URI to give `--key` (private keys): token, object and id, and the module's path.
    pub uri: String,
}

impl KeyInfo {
    /// The id in lower-case hex (empty when the object has none).
    pub fn id_hex(&self) -> String {
        hex::encode(&self.id)
    }
}

/// `"label" (id 01)` of an object, for messages.
pub(crate) fn describe_object(label: &[u8], id: &[u8]) -> String {
    format!(
        "\"{}\" (id {})",
        String::from_utf8_lossy(label),
        if id.is_empty() {
            "none".to_string()
        } else {
            hex::encode(id)
        }
    )
}

impl Module {
    /// Loads and initialises the module at `path`.
    pub fn load(path: &Path) -> Result<Module, Pkcs11Error> {
        // A bare file name is looked up by the dynamic loader (LD_LIBRARY_PATH, ld.so.cache);
        // a path must exist, and saying so beats the loader's message.
        if path.components().count() > 1 && !path.exists() {
            return Err(Pkcs11Error::ModuleNotFound {
                module: path.to_path_buf(),
            });
        }
        let ctx = Pkcs11::new(path).map_err(|e| Pkcs11Error::ModuleLoad {
            module: path.to_path_buf(),
            reason: match e {
                CkError::LibraryLoading(e) => e.to_string(),
                other => other.to_string(),
            },
        })?;
        let module = Module {
            ctx,
            path: path.to_path_buf(),
        };
        match module
            .ctx
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(module),
            Err(e) => Err(module.call_error("C_Initialize", e)),
        }
    }

    /// The module's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn call_error(&self, operation: &str, e: CkError) -> Pkcs11Error {
        Pkcs11Error::Call {
            module: self.path.clone(),
            operation: operation.to_string(),
            reason: short_reason(&e),
        }
    }

    /// Every slot that holds a token.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, Pkcs11Error> {
        Ok(self.slots()?.into_iter().map(|(_, info)| info).collect())
    }

    fn slots(&self) -> Result<Vec<(Slot, TokenInfo)>, Pkcs11Error> {
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(|e| self.call_error("listing slots", e))?;
        let mut out = Vec::new();
        for slot in slots {
            let token = self
                .ctx
                .get_token_info(slot)
                .map_err(|e| self.call_error("reading token information", e))?;
            let slot_info = self
                .ctx
                .get_slot_info(slot)
                .map_err(|e| self.call_error("reading slot information", e))?;
            out.push((
                slot,
                TokenInfo {
                    slot_id: slot.id(),
                    slot_description: slot_info.slot_description().trim().to_string(),
                    slot_manufacturer: slot_info.manufacturer_id().trim().to_string(),
                    label: token.label().trim().to_string(),
                    manufacturer: token.manufacturer_id().trim().to_string(),
                    model: token.model().trim().to_string(),
                    serial: token.serial_number().trim().to_string(),
                    initialized: token.token_initialized(),
                    login_required: token.login_required(),
                    pin_locked: token.user_pin_locked(),
                },
            ));
        }
        Ok(out)
    }

    /// The mechanisms the token in `slot` offers.
    pub(crate) fn mechanisms(&self, slot: Slot) -> Result<Vec<MechanismType>, Pkcs11Error> {
        self.ctx
            .get_mechanism_list(slot)
            .map_err(|e| self.call_error("listing mechanisms", e))
    }

    /// Whether the module itself matches the URI's `library-*` attributes.
    fn library_matches(&self, uri: &Pkcs11Uri) -> Result<bool, Pkcs11Error> {
        if uri.library_manufacturer.is_none()
            && uri.library_description.is_none()
            && uri.library_version.is_none()
        {
            return Ok(true);
        }
        let info = self
            .ctx
            .get_library_info()
            .map_err(|e| self.call_error("reading module information", e))?;
        let version = info.library_version();
        Ok(uri
            .library_manufacturer
            .as_deref()
            .is_none_or(|m| m == info.manufacturer_id().trim())
            && uri
                .library_description
                .as_deref()
                .is_none_or(|d| d == info.library_description().trim())
            && uri.library_version.is_none_or(|(major, minor)| {
                version.major() == major && minor.is_none_or(|minor| version.minor() == minor)
            }))
    }

    /// The one token the URI's token attributes select (any token, when it names none and
    /// the module has exactly one).
    pub(crate) fn find_token(&self, uri: &Pkcs11Uri) -> Result<(Slot, TokenInfo), Pkcs11Error> {
        let slots = self.slots()?;
        let selector = uri.token_selector();
        let library = self.library_matches(uri)?;
        let mut matching: Vec<(Slot, TokenInfo)> = slots
            .iter()
            .filter(|(_, t)| library && token_matches(uri, t))
            .cloned()
            .collect();
        match matching.len() {
            1 => Ok(matching.remove(0)),
            0 => Err(Pkcs11Error::TokenNotFound {
                selector,
                module: self.path.clone(),
                available: slots.iter().map(|(_, t)| t.describe()).collect(),
            }),
            _ => Err(Pkcs11Error::TokenAmbiguous {
                selector,
                module: self.path.clone(),
                matching: matching.iter().map(|(_, t)| t.describe()).collect(),
            }),
        }
    }

    /// Opens a read-only session on `slot` and logs the user in when the token wants it,
    /// with the URI's `pin-value`, else the PIN `pin` gives (asked only then).
    pub(crate) fn login(
        &self,
        slot: Slot,
        token: &TokenInfo,
        uri_pin: Option<&SecretString>,
        pin: &dyn Fn(&TokenInfo) -> Option<SecretString>,
    ) -> Result<Session, Pkcs11Error> {
        let session = self
            .ctx
            .open_ro_session(slot)
            .map_err(|e| self.call_error("opening a session", e))?;
        if !token.login_required {
            return Ok(session);
        }
        if token.pin_locked {
            return Err(Pkcs11Error::PinLocked {
                token: token.label.clone(),
            });
        }
        let asked;
        let pin = match uri_pin {
            Some(pin) => pin,
            None => {
                asked = pin(token).ok_or_else(|| Pkcs11Error::NoPin {
                    token: token.label.clone(),
                })?;
                &asked
            }
        };
        match session.login(UserType::User, Some(pin)) {
            // Login state is per application: another session of ours may have logged in.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                Err(Pkcs11Error::WrongPin {
                    token: token.label.clone(),
                })
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Pkcs11Error::PinLocked {
                token: token.label.clone(),
            }),
            Err(e) => Err(self.call_error(&format!("logging in to token \"{}\"", token.label), e)),
        }
    }

    /// The key objects of the token the URI selects, private keys first. With a PIN (or a
    /// token that needs none) private keys are listed too; `pin` returning `None` lists the
    /// public ones only. Each private key's URI names the token, the object and the module.
    pub fn keys(
        &self,
        uri: &Pkcs11Uri,
        pin: &dyn Fn(&TokenInfo) -> Option<SecretString>,
    ) -> Result<(TokenInfo, Vec<KeyInfo>), Pkcs11Error> {
        let (slot, token) = self.find_token(uri)?;
        let session = match self.login(slot, &token, uri.pin_value.as_ref(), pin) {
            Ok(session) => session,
            Err(Pkcs11Error::NoPin { .. }) => self
                .ctx
                .open_ro_session(slot)
                .map_err(|e| self.call_error("opening a session", e))?,
            Err(e) => return Err(e),
        };
        let mut keys = Vec::new();
        for class in [KeyClass::Private, KeyClass::Public] {
            let ck_class = match class {
                KeyClass::Private => ObjectClass::PRIVATE_KEY,
                KeyClass::Public => ObjectClass::PUBLIC_KEY,
            };
            let mut of_class = Vec::new();
            for object in self.find(&session, &[Attribute::Class(ck_class)])? {
                of_class.push(self.key_info(&session, &token, object, class)?);
            }
            // Tokens return objects in any order; a listing people compare should not move.
            of_class.sort_by(|a, b| (&a.label, &a.id).cmp(&(&b.label, &b.id)));
            keys.extend(of_class);
        }
        Ok((token, keys))
    }

    pub(crate) fn find(
        &self,
        session: &Session,
        template: &[Attribute],
    ) -> Result<Vec<ObjectHandle>, Pkcs11Error> {
        let mut out = Vec::new();
        let objects = session
            .iter_objects(template)
            .map_err(|e| self.call_error("searching objects", e))?;
        for object in objects.take(MAX_OBJECTS) {
            out.push(object.map_err(|e| self.call_error("searching objects", e))?);
        }
        Ok(out)
    }

    fn key_info(
        &self,
        session: &Session,
        token: &TokenInfo,
        object: ObjectHandle,
        class: KeyClass,
    ) -> Result<KeyInfo, Pkcs11Error> {
        let attributes = session
            .get_attributes(
                object,
                &[
                    AttributeType::Label,
                    AttributeType::Id,
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::Modulus,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                ],
            )
            .map_err(|e| self.call_error("reading key attributes", e))?;
        let mut info = KeyInfo {
            class,
            label: String::new(),
            id: Vec::new(),
            key_type: "unknown".into(),
            sensitive: None,
            extractable: None,
            uri: String::new(),
        };
        let mut key_type = None;
        let mut ec_params = None;
        let mut modulus_bits = None;
        for attribute in attributes {
            match attribute {
                Attribute::Label(label) => info.label = String::from_utf8_lossy(&label).into(),
                Attribute::Id(id) => info.id = id,
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcParams(p) => ec_params = Some(p),
                Attribute::Modulus(m) => {
                    let significant = m.iter().skip_while(|b| **b == 0).count();
                    modulus_bits = Some(significant * 8);
                }
                Attribute::Sensitive(s) if class == KeyClass::Private => info.sensitive = Some(s),
                Attribute::Extractable(e) if class == KeyClass::Private => {
                    info.extractable = Some(e);
                }
                _ => {}
            }
        }
        info.key_type = match key_type {
            Some(KeyType::EC) => match ec_params.as_deref().map(curve_name) {
                Some(Some(curve)) => format!("EC {curve}"),
                _ => "EC (unsupported curve)".into(),
            },
            Some(KeyType::RSA) => match modulus_bits {
                Some(bits) => format!("RSA {bits}"),
                None => "RSA".into(),
            },
            Some(other) => other.to_string(),
            None => "unknown".into(),
        };
        if class == KeyClass::Private {
            let uri = Pkcs11Uri {
                token: Some(token.label.clone()),
                object: (!info.label.is_empty()).then(|| info.label.clone()),
                id: (!info.id.is_empty()).then(|| info.id.clone()),
                module_path: Some(self.path.clone()),
                ..Pkcs11Uri::default()
            };
            info.uri = uri.to_string();
        }
        Ok(info)
    }
}

/// Whether the token matches every token attribute the URI gives.
fn token_matches(uri: &Pkcs11Uri, token: &TokenInfo) -> bool {
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    eq(&uri.token, &token.label)
        && eq(&uri.manufacturer, &token.manufacturer)
        && eq(&uri.model, &token.model)
        && eq(&uri.serial, &token.serial)
        && eq(&uri.slot_description, &token.slot_description)
        && uri.slot_id.is_none_or(|id| id == token.slot_id)
        && eq(&uri.slot_manufacturer, &token.slot_manufacturer)
}

/// `P-256` / `P-384` for the DER OIDs of `CKA_EC_PARAMS` signet signs with.
pub(crate) fn curve_name(params: &[u8]) -> Option<&'static str> {
    match params {
        [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => Some("P-256"),
        [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22] => Some("P-384"),
        _ => None,
    }
}

/// A PKCS#11 failure in a few words: the return value's name (`PinIncorrect`) rather than
/// the specification's paragraph about it.
pub(crate) fn short_reason(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("{function} returned {rv:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_module_says_so() {
        let err = Module::load(Path::new("/nonexistent/libnothing.so")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PKCS#11 module /nonexistent/libnothing.so not found"
        );
    }

    #[test]
    fn a_file_that_is_no_module_cannot_be_loaded() {
        let dir = std::env::temp_dir().join(format!("signet-pkcs11-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("fake.so");
        std::fs::write(&fake, b"not an ELF file").unwrap();
        let err = Module::load(&fake).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(err, Pkcs11Error::ModuleLoad { .. }), "{err}");
        assert!(err.to_string().starts_with("cannot load PKCS#11 module"));
    }

    #[test]
    fn token_attributes_all_have_to_match() {
        let token = TokenInfo {
            slot_id: 3,
            slot_description: "slot".into(),
            slot_manufacturer: "SoftHSM project".into(),
            label: "ci".into(),
            manufacturer: "SoftHSM project".into(),
            model: "SoftHSM v2".into(),
            serial: "42".into(),
            initialized: true,
            login_required: true,
            pin_locked: false,
        };
        let uri = |text: &str| text.parse::<Pkcs11Uri>().unwrap();
        assert!(token_matches(&uri("pkcs11:"), &token));
        assert!(token_matches(
            &uri("pkcs11:token=ci;serial=42;slot-id=3"),
            &token
        ));
        assert!(!token_matches(&uri("pkcs11:token=ci;serial=43"), &token));
        assert!(!token_matches(&uri("pkcs11:token=CI"), &token));
        assert!(!token_matches(&uri("pkcs11:slot-id=4"), &token));
    }
}
