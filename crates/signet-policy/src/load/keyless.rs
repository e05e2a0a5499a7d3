//! Certificate trust on attestors: `keyless` (a Sigstore trusted root, the public-good one
//! signet ships by default, and the identities allowed) and `certificates` (the user's own CA
//! roots and intermediates, and the identities allowed). Field names follow Sigstore
//! policy-controller's `keyless.identities`.

use saphyr::YamlData;
use signet_core::keyless::{
    CertificateTrust, IdentityError, IdentityMatcher, KeylessTrust, MAX_TRUSTED_ROOT_BYTES,
    StringMatch, TrustedRoot, claim_key, fulcio_claim_names,
};

use super::yaml::{Entry, Fields, as_str, describe, is_null, start, suggest};
use super::{Checker, KEY_FILE_MAX_BYTES, read_bounded};

const KEYLESS_FIELDS: &[&str] = &["trustedRoot", "identities"];
const CERTIFICATES_FIELDS: &[&str] = &["roots", "intermediates", "identities"];
const IDENTITY_FIELDS: &[&str] = &[
    "issuer",
    "issuerRegExp",
    "subject",
    "subjectRegExp",
    "extensions",
];
/// The fields of a claim condition that is not a plain string.
const CLAIM_MATCH_FIELDS: &[&str] = &["regExp"];
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

    /// `identities: [{issuer | issuerRegExp, subject | subjectRegExp, extensions?}]`, at least
    /// one; for keyless, each must name the issuer. `extensions` holds Fulcio claims the
    /// certificate must carry; they are read from any certificate, so own-CA identities
    /// (`certificates`) may state them too (a private Fulcio), and a certificate without the
    /// claim is denied.
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
            let claims = match f.get("extensions") {
                Some(e) => self.claims(e, &item_what),
                None => Some(Vec::new()),
            };
            let matcher = match (subject, issuer) {
                (Some(Some(subject)), Some(Some(issuer))) => {
                    Some(IdentityMatcher::new(subject, issuer))
                }
                (Some(Some(subject)), Some(None)) if !issuer_required => {
                    Some(IdentityMatcher::subject_only(subject))
                }
                (Some(None), _) => {
                    self.error(
                        f.at,
                        format!("{item_what} is missing `subject` or `subjectRegExp`"),
                    );
                    None
                }
                (_, Some(None)) => {
                    self.error(
                        f.at,
                        format!(
                            "{item_what} is missing `issuer` or `issuerRegExp`: a keyless \
                             identity means nothing without the OIDC issuer that vouched for it"
                        ),
                    );
                    None
                }
                _ => None,
            };
            if let (Some(mut matcher), Some(claims)) = (matcher, claims) {
                matcher.extensions = claims;
                out.push(matcher);
            }
        }
        out
    }

    /// `extensions: {claim: value | {regExp: ^…$}}`: Fulcio claims the certificate must carry,
    /// by Fulcio's name (`sourceRepositoryRef`) or dotted OID, each equal to a string or
    /// matching an anchored regular expression. `None` on an error (reported).
    fn claims(&mut self, entry: Entry<'_>, what: &str) -> Option<Vec<(String, StringMatch)>> {
        let field = format!("`extensions` of {what}");
        let YamlData::Mapping(map) = &entry.value.data else {
            let hint = if is_null(entry.value) {
                " (leave `extensions` out for none)"
            } else {
                ""
            };
            self.error(
                entry.value_span(),
                format!(
                    "{field} must be a mapping from Fulcio claim to value (`githubWorkflowTrigger: \
                     push`, `sourceRepositoryRef: {{regExp: ^refs/tags/v.*$}}`), found {}{hint}",
                    describe(entry.value)
                ),
            );
            return None;
        };
        let before = self.errors.len();
        let mut out: Vec<(String, StringMatch)> = Vec::new();
        for (key, value) in map.iter() {
            let Some(name) = self.string(key, start(key), &format!("a key of {field}")) else {
                continue;
            };
            let claim = match claim_key(name) {
                Ok(claim) => claim,
                Err(err) => {
                    let hint = match err {
                        IdentityError::UnknownClaim { .. } => suggest(name, fulcio_claim_names())
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default(),
                        _ => String::new(),
                    };
                    self.error(start(key), format!("{field}: {err}{hint}"));
                    continue;
                }
            };
            if out.iter().any(|(c, _)| *c == claim) {
                self.error(
                    start(key),
                    format!("{field} names the claim {claim} twice; keep one"),
                );
                continue;
            }
            let entry = Entry { key, value };
            let claim_what = format!("`{name}` of {field}");
            if let Some(m) = self.claim_match(entry, &claim_what) {
                out.push((claim, m));
            }
        }
        if map.is_empty() {
            self.error(
                entry.value_span(),
                format!("{field} is empty; leave it out for none"),
            );
        }
        (self.errors.len() == before).then_some(out)
    }

    /// One claim's value: a string (exact) or `{regExp: ^…$}`.
    fn claim_match(&mut self, entry: Entry<'_>, what: &str) -> Option<StringMatch> {
        if let Some(value) = as_str(entry.value) {
            if value.is_empty() {
                self.error(entry.value_span(), format!("{what} is empty"));
                return None;
            }
            return Some(StringMatch::exact(value));
        }
        if !matches!(entry.value.data, YamlData::Mapping(_)) {
            self.error(
                entry.value_span(),
                format!(
                    "{what} must be a string (the exact value) or `{{regExp: ^…$}}`, found {}",
                    describe(entry.value)
                ),
            );
            return None;
        }
        let fields = self.entry_fields(entry, what, CLAIM_MATCH_FIELDS)?;
        let Some(re) = fields.get("regExp") else {
            if !fields.had_unknown {
                self.error(fields.at, format!("{what} needs `regExp`"));
            }
            return None;
        };
        let pattern = self.string(re.value, re.value_span(), &format!("`regExp` of {what}"))?;
        match StringMatch::regex(pattern) {
            Ok(m) => Some(m),
            Err(err) => {
                self.error(re.value_span(), format!("`regExp` of {what}: {err}"));
                None
            }
        }
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
