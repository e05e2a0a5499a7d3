//! Certificate trust on attestors: `keyless` (a Sigstore trusted root, the public-good one
//! signet ships by default, and the identities allowed) and `certificates` (the user's own CA
//! roots and intermediates, and the identities allowed). Field names follow Sigstore
//! policy-controller's `keyless.identities`.

use signet_core::keyless::{
    CertificateTrust, IdentityMatcher, KeylessTrust, MAX_TRUSTED_ROOT_BYTES, StringMatch,
    TrustedRoot,
};

use super::yaml::{Entry, Fields, start};
use super::{Checker, KEY_FILE_MAX_BYTES, read_bounded};

const KEYLESS_FIELDS: &[&str] = &["trustedRoot", "identities"];
const CERTIFICATES_FIELDS: &[&str] = &["roots", "intermediates", "identities"];
const IDENTITY_FIELDS: &[&str] = &["issuer", "issuerRegExp", "subject", "subjectRegExp"];
const FILE_FIELDS: &[&str] = &["file"];

impl Checker<'_> {
    /// The attestor's `keyless` and `certificates` trust, in that order.
    pub(super) fn certificate_trust(
        &mut self,
        fields: &Fields<'_>,
        what: &str,
    ) -> Vec<KeylessTrust> {
        let mut out = Vec::new();
        if let Some(e) = fields.get("keyless") {
            out.extend(self.keyless(e, what));
        }
        if let Some(e) = fields.get("certificates") {
            out.extend(self.own_pki(e, what));
        }
        out
    }

    fn keyless(&mut self, entry: Entry<'_>, what: &str) -> Option<KeylessTrust> {
        let what = format!("`keyless` of {what}");
        let fields = self.entry_fields(entry, &what, KEYLESS_FIELDS)?;
        let before = self.errors.len();
        let root = match fields.get("trustedRoot") {
            Some(e) => self.trusted_root(e, &what),
            None => match TrustedRoot::public_good() {
                Ok(root) => Some(root),
                Err(e) => {
                    self.error(fields.at, format!("{what}: the shipped trusted root: {e}"));
                    None
                }
            },
        };
        let identities = self.identities(&fields, &what, true);
        if self.errors.len() != before {
            return None;
        }
        Some(KeylessTrust::keyless(&root?, identities))
    }

    fn own_pki(&mut self, entry: Entry<'_>, what: &str) -> Option<KeylessTrust> {
        let what = format!("`certificates` of {what}");
        let fields = self.entry_fields(entry, &what, CERTIFICATES_FIELDS)?;
        let before = self.errors.len();
        let roots = match fields.get("roots") {
            Some(e) => self.pem_file(e, &format!("`roots` of {what}")),
            None => {
                self.error(
                    fields.at,
                    format!("{what} is missing `roots: {{file: ca.pem}}`"),
                );
                None
            }
        };
        let intermediates = match fields.get("intermediates") {
            Some(e) => self.pem_file(e, &format!("`intermediates` of {what}")),
            None => Some(String::new()),
        };
        let identities = self.identities(&fields, &what, false);
        if self.errors.len() != before {
            return None;
        }
        let (roots, intermediates) = (roots?, intermediates?);
        match CertificateTrust::from_pems(&roots, &intermediates) {
            Ok(trust) => Some(KeylessTrust::own_pki(trust, identities)),
            Err(e) => {
                self.error(fields.at, format!("{what}: {e}"));
                None
            }
        }
    }

    fn trusted_root(&mut self, entry: Entry<'_>, what: &str) -> Option<TrustedRoot> {
        let fields = self.entry_fields(entry, &format!("`trustedRoot` of {what}"), FILE_FIELDS)?;
        let Some(file) = fields.get("file") else {
            self.error(fields.at, format!("`trustedRoot` of {what} needs `file`"));
            return None;
        };
        let rel = self
            .string(file.value, file.value_span(), "`file`")?
            .to_owned();
        let at = file.value_span();
        let text = match read_bounded(&self.base_dir.join(&rel), MAX_TRUSTED_ROOT_BYTES as u64) {
            Ok(text) => text,
            Err(e) => {
                self.error(at, format!("{what}: cannot read trusted root `{rel}`: {e}"));
                return None;
            }
        };
        match TrustedRoot::from_json(text.as_bytes()) {
            Ok(root) => Some(root),
            Err(e) => {
                self.error(at, format!("{what}: trusted root `{rel}`: {e}"));
                None
            }
        }
    }

    /// A `{file: x.pem}` read whole (certificates are checked by the caller).
    fn pem_file(&mut self, entry: Entry<'_>, what: &str) -> Option<String> {
        let fields = self.entry_fields(entry, what, FILE_FIELDS)?;
        let Some(file) = fields.get("file") else {
            self.error(fields.at, format!("{what} needs `file`"));
            return None;
        };
        let rel = self
            .string(file.value, file.value_span(), "`file`")?
            .to_owned();
        match read_bounded(&self.base_dir.join(&rel), KEY_FILE_MAX_BYTES) {
            Ok(text) => Some(text),
            Err(e) => {
                self.error(
                    file.value_span(),
                    format!("{what}: cannot read `{rel}`: {e}"),
                );
                None
            }
        }
    }

    /// `identities: [{issuer | issuerRegExp, subject | subjectRegExp}]`, at least one; for
    /// keyless, each must name the issuer.
    fn identities(
        &mut self,
        fields: &Fields<'_>,
        what: &str,
        issuer_required: bool,
    ) -> Vec<IdentityMatcher> {
        let mut out = Vec::new();
        let Some(entry) = fields.get("identities") else {
            self.error(
                fields.at,
                format!(
                    "{what} is missing `identities`: say who may sign (`- issuer: …` and \
                     `subject: …`, or `issuerRegExp`/`subjectRegExp`)"
                ),
            );
            return out;
        };
        let Some(items) = self.list(
            entry.value,
            entry.value_span(),
            &format!("`identities` of {what}"),
        ) else {
            return out;
        };
        if items.is_empty() {
            self.error(entry.value_span(), format!("{what}: `identities` is empty"));
        }
        for (index, item) in items.iter().enumerate() {
            let item_what = format!("identity #{} of {what}", index + 1);
            let Some(f) = self.fields(item, start(item), start(item), &item_what, IDENTITY_FIELDS)
            else {
                continue;
            };
            let subject = self.string_match(&f, "subject", "subjectRegExp", &item_what);
            let issuer = self.string_match(&f, "issuer", "issuerRegExp", &item_what);
            match (subject, issuer) {
                (Some(Some(subject)), Some(Some(issuer))) => {
                    out.push(IdentityMatcher::new(subject, issuer));
                }
                (Some(Some(subject)), Some(None)) if !issuer_required => {
                    out.push(IdentityMatcher::subject_only(subject));
                }
                (Some(None), _) => self.error(
                    f.at,
                    format!("{item_what} is missing `subject` or `subjectRegExp`"),
                ),
                (_, Some(None)) => self.error(
                    f.at,
                    format!(
                        "{item_what} is missing `issuer` or `issuerRegExp`: a keyless identity \
                         means nothing without the OIDC issuer that vouched for it"
                    ),
                ),
                _ => {}
            }
        }
        out
    }

    /// `exact` or `regexp` (anchored), not both: `Some(None)` when neither is there, `None`
    /// on an error (reported).
    fn string_match(
        &mut self,
        fields: &Fields<'_>,
        exact: &str,
        regexp: &str,
        what: &str,
    ) -> Option<Option<StringMatch>> {
        match (fields.get(exact), fields.get(regexp)) {
            (Some(e), Some(_)) => {
                self.error(
                    e.key_span(),
                    format!("{what} has both `{exact}` and `{regexp}`; keep one"),
                );
                None
            }
            (Some(e), None) => {
                let value =
                    self.string(e.value, e.value_span(), &format!("`{exact}` of {what}"))?;
                if value.is_empty() {
                    self.error(e.value_span(), format!("`{exact}` of {what} is empty"));
                    return None;
                }
                Some(Some(StringMatch::exact(value)))
            }
            (None, Some(e)) => {
                let value =
                    self.string(e.value, e.value_span(), &format!("`{regexp}` of {what}"))?;
                match StringMatch::regex(value) {
                    Ok(m) => Some(Some(m)),
                    Err(err) => {
                        self.error(e.value_span(), format!("`{regexp}` of {what}: {err}"));
                        None
                    }
                }
            }
            (None, None) => Some(None),
        }
    }
}
