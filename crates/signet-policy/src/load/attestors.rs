//! Attestors: names, public keys (inline PEM, key files, Binary Authorization's PKIX keys in
//! `userOwnedGrafeasNote`), predicate types, CEL conditions and signed identities.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use saphyr::YamlData;
use signet_core::binauthz::{self, NoteKey};
use signet_core::keys::{KeyId, PublicKey};
use signet_core::pgp::PgpPublicKey;
use signet_core::timestamp::{TimestampAuthority, ValidFor};

use super::yaml::{Entry, Fields, Node, as_str, quoted_list, start};
use super::{Checker, KEY_FILE_MAX_BYTES, read_bounded};
use crate::model::{
    Attestor, AttestorName, Condition, KeyWindow, RevokedKey, SignedIdentity, Span,
};

pub(super) const ATTESTOR_FIELDS: &[&str] = &[
    "name",
    "description",
    "publicKeys",
    "userOwnedGrafeasNote",
    "predicateType",
    "conditions",
    "signedIdentity",
    "maxAge",
    "keyless",
    "certificates",
    "updateTime",
    "etag",
];
const KEY_FIELDS: &[&str] = &["pem", "file", "validFrom", "validUntil"];
const NOTE_FIELDS: &[&str] = &[
    "noteReference",
    "publicKeys",
    "delegationServiceAccountEmail",
];
const NOTE_KEY_FIELDS: &[&str] = &[
    "id",
    "comment",
    "pkixPublicKey",
    "asciiArmoredPgpPublicKey",
    "validFrom",
    "validUntil",
];
const PKIX_FIELDS: &[&str] = &["publicKeyPem", "signatureAlgorithm"];
const REVOKED_FIELDS: &[&str] = &["keyId", "revokedAt", "reason"];
const TSA_FIELDS: &[&str] = &["name", "certChain", "validFrom", "validUntil"];
const FILE_FIELDS: &[&str] = &["file"];
const IDENTITY_FIELDS: &[&str] = &["type", "prefix", "signedPrefix"];
const IDENTITY_TYPES: &[&str] = &["matchDigest", "matchRepository", "remapIdentity"];

/// `NAME` or Binary Authorization's `projects/PROJECT/attestors/NAME`, as an attestor name.
pub(super) fn attestor_name(text: &str) -> Result<AttestorName, String> {
    let name = if text.contains('/') {
        match text.split('/').collect::<Vec<_>>().as_slice() {
            ["projects", project, "attestors", name] if !project.is_empty() => *name,
            _ => {
                return Err(format!(
                    "invalid attestor name `{text}`: write `NAME` or \
                     `projects/PROJECT/attestors/NAME`"
                ));
            }
        }
    } else {
        text
    };
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(AttestorName(name.to_owned()))
    } else {
        Err(format!(
            "invalid attestor name `{text}`: a name is 1 to 100 letters, digits, `-`, `_` or `.`"
        ))
    }
}

impl<'t> Checker<'t> {
    pub(super) fn attestors(
        &mut self,
        entry: Entry<'_>,
        declared: &mut BTreeSet<AttestorName>,
    ) -> BTreeMap<AttestorName, Attestor> {
        let mut attestors = BTreeMap::new();
        let mut first_seen: BTreeMap<AttestorName, Span> = BTreeMap::new();
        let Some(items) = self.list(entry.value, entry.value_span(), "`attestors`") else {
            return attestors;
        };
        for (index, item) in items.iter().enumerate() {
            let before = self.errors.len();
            // Named in messages as soon as possible, even about its other fields.
            let peeked = match &item.data {
                YamlData::Mapping(map) => map
                    .iter()
                    .find(|(k, _)| as_str(k) == Some("name"))
                    .and_then(|(_, v)| as_str(v))
                    .and_then(|text| attestor_name(text).ok()),
                _ => None,
            };
            let fallback = match peeked {
                Some(name) => format!("attestor `{name}`"),
                None => format!("attestor #{}", index + 1),
            };
            let Some(fields) =
                self.fields(item, start(item), start(item), &fallback, ATTESTOR_FIELDS)
            else {
                continue;
            };
            let name = match fields.get("name") {
                Some(e) => self
                    .string(e.value, e.value_span(), &format!("`name` of {fallback}"))
                    .and_then(|text| match attestor_name(text) {
                        Ok(name) => Some((name, e.value_span())),
                        Err(message) => {
                            self.error(e.value_span(), message);
                            None
                        }
                    }),
                None => {
                    self.error(fields.at, format!("{fallback} is missing `name`"));
                    None
                }
            };
            let what = name
                .as_ref()
                .map_or(fallback, |(n, _)| format!("attestor `{n}`"));
            if let Some((name, at)) = &name {
                declared.insert(name.clone());
                if let Some(previous) = first_seen.get(name) {
                    self.error(
                        *at,
                        format!(
                            "duplicate attestor name `{name}`: already defined on line {}",
                            previous.line
                        ),
                    );
                } else {
                    first_seen.insert(name.clone(), *at);
                }
            }

            let keyless = self.certificate_trust(&fields, &what);
            let (keys, note_keys, key_windows) = self.attestor_keys(&fields, &what);
            let max_age = fields.get("maxAge").and_then(|e| self.max_age(e, &what));
            let predicate_type = fields
                .get("predicateType")
                .and_then(|e| self.predicate_type(e, &what));
            let conditions = fields
                .get("conditions")
                .map(|e| self.conditions(e, &what))
                .unwrap_or_default();
            let signed_identity = fields
                .get("signedIdentity")
                .and_then(|e| self.signed_identity(e, &what))
                .unwrap_or_default();
            for field in ["description", "updateTime", "etag"] {
                if let Some(e) = fields.get(field) {
                    self.string(e.value, e.value_span(), &format!("`{field}` of {what}"));
                }
            }

            if self.errors.len() != before {
                continue;
            }
            if let Some((name, _)) = name {
                attestors.insert(
                    name.clone(),
                    Attestor {
                        name,
                        keys,
                        note_keys,
                        predicate_type,
                        conditions,
                        signed_identity,
                        max_age,
                        key_windows,
                        keyless,
                        span: start(item),
                    },
                );
            }
        }
        attestors
    }

    /// `timestampAuthorities: [{name, certChain: {file}, validFrom, validUntil}]`: the chain
    /// is PEM, leaf first, root last.
    pub(super) fn timestamp_authorities(&mut self, entry: Entry<'_>) -> Vec<TimestampAuthority> {
        let mut out: Vec<TimestampAuthority> = Vec::new();
        let Some(items) = self.list(entry.value, entry.value_span(), "`timestampAuthorities`")
        else {
            return out;
        };
        for (index, item) in items.iter().enumerate() {
            let what = format!("timestamp authority #{}", index + 1);
            let Some(fields) = self.fields(item, start(item), start(item), &what, TSA_FIELDS)
            else {
                continue;
            };
            let before = self.errors.len();
            let name = match fields.get("name") {
                Some(e) => self
                    .string(e.value, e.value_span(), &format!("`name` of {what}"))
                    .map(|n| (n.to_owned(), e.value_span())),
                None => {
                    self.error(fields.at, format!("{what} is missing `name`"));
                    None
                }
            };
            let window = self.key_window(&fields, &what);
            let chain = match fields.get("certChain") {
                Some(e) => self
                    .entry_fields(e, &format!("`certChain` of {what}"), FILE_FIELDS)
                    .and_then(|f| match f.get("file") {
                        Some(file) => self
                            .string(file.value, file.value_span(), "`file`")
                            .map(|rel| (rel.to_owned(), file.value_span())),
                        None => {
                            self.error(f.at, format!("`certChain` of {what} needs `file`"));
                            None
                        }
                    }),
                None => {
                    self.error(
                        fields.at,
                        format!("{what} is missing `certChain: {{file: chain.pem}}`"),
                    );
                    None
                }
            };
            if self.errors.len() != before {
                continue;
            }
            let (Some((name, name_at)), Some((rel, at)), Some(window)) = (name, chain, window)
            else {
                continue;
            };
            if out.iter().any(|a| a.name() == name) {
                self.error(name_at, format!("{what}: the name `{name}` is used twice"));
                continue;
            }
            let path = self.base_dir.join(&rel);
            let text = match read_bounded(&path, KEY_FILE_MAX_BYTES) {
                Ok(text) => text,
                Err(e) => {
                    self.error(at, format!("{what}: cannot read `{rel}`: {e}"));
                    continue;
                }
            };
            match TimestampAuthority::from_pem_chain(name, &text) {
                Ok(authority) => {
                    let window = window.unwrap_or_default();
                    out.push(authority.with_valid_for(ValidFor {
                        start: window.valid_from,
                        end: window.valid_until,
                    }));
                }
                Err(e) => self.error(at, format!("{what}: `{rel}`: {e}")),
            }
        }
        out
    }

    /// `revokedKeys: [{keyId, revokedAt, reason}]`.
    pub(super) fn revoked_keys(&mut self, entry: Entry<'_>) -> Vec<RevokedKey> {
        let mut out: Vec<RevokedKey> = Vec::new();
        let Some(items) = self.list(entry.value, entry.value_span(), "`revokedKeys`") else {
            return out;
        };
        for (index, item) in items.iter().enumerate() {
            let what = format!("revoked key #{}", index + 1);
            let Some(fields) = self.fields(item, start(item), start(item), &what, REVOKED_FIELDS)
            else {
                continue;
            };
            let before = self.errors.len();
            let key_id = match fields.get("keyId") {
                Some(e) => self
                    .string(e.value, e.value_span(), &format!("`keyId` of {what}"))
                    .and_then(|text| match KeyId::parse(text) {
                        Some(id) => Some((id, e.value_span())),
                        None => {
                            self.error(
                                e.value_span(),
                                format!(
                                    "{what}: `{text}` is not a key id; write `sha256:<64 hex>` \
                                     (what `signet public-key` and decisions print) or a PGP \
                                     fingerprint"
                                ),
                            );
                            None
                        }
                    }),
                None => {
                    self.error(fields.at, format!("{what} is missing `keyId`"));
                    None
                }
            };
            let revoked_at = fields
                .get("revokedAt")
                .and_then(|e| self.time(e, &format!("`revokedAt` of {what}")));
            let reason = match fields.get("reason") {
                Some(e) => self
                    .string(e.value, e.value_span(), &format!("`reason` of {what}"))
                    .map(str::to_owned),
                None => {
                    self.error(
                        fields.at,
                        format!("{what} is missing `reason` (decisions name it)"),
                    );
                    None
                }
            };
            if self.errors.len() != before {
                continue;
            }
            let (Some((key_id, at)), Some(reason)) = (key_id, reason) else {
                continue;
            };
            if let Some(first) = out.iter().find(|r| r.key_id == key_id) {
                let line = first.span.line;
                self.error(
                    at,
                    format!("{what}: key {key_id} is already revoked on line {line}"),
                );
                continue;
            }
            out.push(RevokedKey {
                key_id,
                revoked_at,
                reason,
                span: start(item),
            });
        }
        out
    }

    /// The keys of an attestor, from `publicKeys` or `userOwnedGrafeasNote.publicKeys`, and
    /// the validity windows of those that have one.
    fn attestor_keys(
        &mut self,
        fields: &Fields<'_>,
        what: &str,
    ) -> (Vec<PublicKey>, Vec<NoteKey>, BTreeMap<KeyId, KeyWindow>) {
        let before = self.errors.len();
        let mut windows = BTreeMap::new();
        let mut keys: Vec<(PublicKey, Span)> = Vec::new();
        let mut note_keys: Vec<(NoteKey, Span)> = Vec::new();
        let mut listed = 0;
        let own = fields.get("publicKeys");
        let note = fields.get("userOwnedGrafeasNote");
        if let (Some(_), Some(note)) = (own, note) {
            self.error(
                note.key_span(),
                format!(
                    "{what} has keys both in `publicKeys` and in `userOwnedGrafeasNote`; keep one"
                ),
            );
        }
        let mut empty_at = None;

        if let Some(e) = own {
            let items = self
                .list(e.value, e.value_span(), &format!("`publicKeys` of {what}"))
                .unwrap_or_default();
            listed += items.len();
            empty_at = Some(e.key_span());
            for item in items {
                if let Some((key, window)) = self.own_key(item, what) {
                    if let Some(window) = window {
                        windows.insert(key.id().clone(), window);
                    }
                    self.add_key(&mut keys, key, start(item), what);
                }
            }
        }

        if let Some(e) = note {
            empty_at = Some(e.key_span());
            let note_what = format!("`userOwnedGrafeasNote` of {what}");
            if let Some(note_fields) = self.entry_fields(e, &note_what, NOTE_FIELDS) {
                for field in ["noteReference", "delegationServiceAccountEmail"] {
                    if let Some(e) = note_fields.get(field) {
                        self.string(e.value, e.value_span(), &format!("`{field}` of {what}"));
                    }
                }
                if let Some(e) = note_fields.get("publicKeys") {
                    empty_at = Some(e.key_span());
                    let items = self
                        .list(e.value, e.value_span(), &format!("`publicKeys` of {what}"))
                        .unwrap_or_default();
                    listed += items.len();
                    for item in items {
                        let Some((key, window)) = self.note_key(item, what) else {
                            continue;
                        };
                        if let Some(window) = window {
                            windows.insert(key.key_id(), window);
                        }
                        let id = key.listed_id();
                        if let Some((_, first)) =
                            note_keys.iter().find(|(k, _)| k.listed_id() == id)
                        {
                            let line = first.line;
                            self.error(
                                start(item),
                                format!(
                                    "{what}: key id `{id}` is listed twice (first on line {line})"
                                ),
                            );
                            continue;
                        }
                        if let NoteKey::Pkix { key, .. } = &key {
                            self.add_key(&mut keys, key.clone(), start(item), what);
                        }
                        note_keys.push((key, start(item)));
                    }
                }
            }
        }

        // Not when the keys are there but malformed, which is already reported, nor when the
        // attestor trusts certificates instead.
        let certificates = fields.get("keyless").is_some() || fields.get("certificates").is_some();
        if listed == 0 && self.errors.len() == before && !certificates {
            let (at, hint) = match (own, note) {
                (None, Some(_)) => (
                    empty_at.unwrap_or(fields.at),
                    "add one under `userOwnedGrafeasNote.publicKeys`",
                ),
                _ => (
                    empty_at.unwrap_or(fields.at),
                    "add one under `publicKeys` (`- file: key.pub` or `- pem: ...`), or trust \
                     certificates with `keyless` or `certificates`",
                ),
            };
            self.error(at, format!("{what} has no public keys; {hint}"));
        }
        (
            keys.into_iter().map(|(key, _)| key).collect(),
            note_keys.into_iter().map(|(key, _)| key).collect(),
            windows,
        )
    }

    /// Adds `key` unless the attestor already has it.
    fn add_key(&mut self, keys: &mut Vec<(PublicKey, Span)>, key: PublicKey, at: Span, what: &str) {
        if let Some((_, first)) = keys.iter().find(|(k, _)| k.id() == key.id()) {
            let line = first.line;
            self.error(
                at,
                format!(
                    "{what}: key {} is listed twice (first on line {line})",
                    key.id().short()
                ),
            );
        } else {
            keys.push((key, at));
        }
    }

    /// signet's form: `{pem: "..."}` or `{file: path}`, with an optional window.
    fn own_key(&mut self, item: &Node<'_>, what: &str) -> Option<(PublicKey, Option<KeyWindow>)> {
        let key_what = format!("a public key of {what}");
        let fields = self.fields(item, start(item), start(item), &key_what, KEY_FIELDS)?;
        let window = self.key_window(&fields, &key_what)?;
        let key = match (fields.get("pem"), fields.get("file")) {
            (Some(_), Some(file)) => {
                self.error(
                    file.key_span(),
                    format!("{key_what} has both `pem` and `file`; give one"),
                );
                None
            }
            (Some(pem), None) => self.pem_key(pem, what),
            (None, Some(file)) => {
                let rel = self.string(file.value, file.value_span(), "`file`")?;
                self.key_file(rel, file.value_span(), what)
            }
            (None, None) => {
                self.error(
                    fields.at,
                    format!(
                        "{key_what} needs `pem` (the PEM text) or `file` (a path relative to the \
                         policy file)"
                    ),
                );
                None
            }
        }?;
        Some((key, window))
    }

    /// `validFrom`/`validUntil` of a key (RFC 3339, UTC): `Some(None)` when neither is given,
    /// `None` after an error.
    fn key_window(&mut self, fields: &Fields<'_>, what: &str) -> Option<Option<KeyWindow>> {
        let before = self.errors.len();
        let mut window = KeyWindow::default();
        let mut until_at = None;
        for (field, slot) in [
            ("validFrom", &mut window.valid_from),
            ("validUntil", &mut window.valid_until),
        ] {
            if let Some(e) = fields.get(field) {
                *slot = self.time(e, &format!("`{field}` of {what}"));
                if field == "validUntil" {
                    until_at = Some(e.value_span());
                }
            }
        }
        if self.errors.len() != before {
            return None;
        }
        if let (Some(from), Some(until), Some(at)) =
            (window.valid_from, window.valid_until, until_at)
            && until <= from
        {
            self.error(
                at,
                format!("{what}: `validUntil` must be later than `validFrom`"),
            );
            return None;
        }
        Some((window != KeyWindow::default()).then_some(window))
    }

    /// An RFC 3339 time in UTC (`2026-01-31T00:00:00Z`).
    pub(super) fn time(&mut self, entry: Entry<'_>, what: &str) -> Option<SystemTime> {
        let text = self.string(entry.value, entry.value_span(), what)?;
        match humantime::parse_rfc3339(text) {
            Ok(at) => Some(at),
            Err(e) => {
                self.error(
                    entry.value_span(),
                    format!(
                        "{what}: `{text}` is not an RFC 3339 time in UTC such as \
                         `2026-01-31T00:00:00Z` ({e})"
                    ),
                );
                None
            }
        }
    }

    /// `maxAge`: a positive duration with a unit (`7d`, `12h`, `90m`, `30s`).
    fn max_age(&mut self, entry: Entry<'_>, what: &str) -> Option<Duration> {
        let what = format!("`maxAge` of {what}");
        let Some(text) = as_str(entry.value) else {
            self.error(
                entry.value_span(),
                format!(
                    "{what} must be a duration with a unit, such as `7d`, `12h`, `90m` or `30s`"
                ),
            );
            return None;
        };
        let valid = text
            .strip_suffix(['d', 'h', 'm', 's'])
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let parsed = valid
            .then(|| humantime::parse_duration(text).ok())
            .flatten()
            .filter(|d| !d.is_zero());
        if parsed.is_none() {
            self.error(
                entry.value_span(),
                format!(
                    "{what}: `{text}` is not a positive duration such as `7d`, `12h`, `90m` or \
                     `30s` (a number and one unit)"
                ),
            );
        }
        parsed
    }

    /// Binary Authorization's form: `{id, pkixPublicKey: {publicKeyPem, signatureAlgorithm}}`
    /// or `{id, asciiArmoredPgpPublicKey}`. A PKIX key without `id` gets the one Binary
    /// Authorization gives it (`ni:///sha-256;…`); a PGP key's id is its fingerprint.
    fn note_key(&mut self, item: &Node<'_>, what: &str) -> Option<(NoteKey, Option<KeyWindow>)> {
        let key_what = format!("a public key of {what}");
        let fields = self.fields(item, start(item), start(item), &key_what, NOTE_KEY_FIELDS)?;
        let window = self.key_window(&fields, &key_what)?;
        self.note_key_in(&fields, &key_what, what)
            .map(|key| (key, window))
    }

    fn note_key_in(&mut self, fields: &Fields<'_>, key_what: &str, what: &str) -> Option<NoteKey> {
        if let Some(e) = fields.get("comment") {
            self.string(e.value, e.value_span(), &format!("`comment` of {key_what}"));
        }
        let id = match fields.get("id") {
            Some(e) => {
                let id = self.string(e.value, e.value_span(), &format!("`id` of {key_what}"))?;
                if id.is_empty() || id.len() > 2048 || id.chars().any(char::is_whitespace) {
                    self.error(
                        e.value_span(),
                        format!("{what}: key `id` must be 1 to 2048 characters without spaces"),
                    );
                    return None;
                }
                Some((id.to_owned(), e.value_span()))
            }
            None => None,
        };
        match (
            fields.get("pkixPublicKey"),
            fields.get("asciiArmoredPgpPublicKey"),
        ) {
            (Some(_), Some(pgp)) => {
                self.error(
                    pgp.key_span(),
                    format!("{key_what} has both `pkixPublicKey` and `asciiArmoredPgpPublicKey`; give one"),
                );
                None
            }
            (None, None) => {
                self.error(
                    fields.at,
                    format!("{key_what} is missing `pkixPublicKey` or `asciiArmoredPgpPublicKey`"),
                );
                None
            }
            (None, Some(pgp)) => {
                let text =
                    self.string(pgp.value, pgp.value_span(), "`asciiArmoredPgpPublicKey`")?;
                let key = match PgpPublicKey::from_armor(text) {
                    Ok(key) => key,
                    Err(e) => {
                        self.error(pgp.value_span(), format!("{what}: PGP key: {e}"));
                        return None;
                    }
                };
                if let Some((id, at)) = id
                    && !key.matches_id(&id)
                {
                    self.error(
                        at,
                        format!(
                            "{what}: key `id` `{id}` is not the PGP key's fingerprint {}; \
                             Binary Authorization names PGP keys by fingerprint",
                            key.fingerprint()
                        ),
                    );
                    return None;
                }
                Some(NoteKey::Pgp(key))
            }
            (Some(pkix), None) => self.pkix_key(pkix, id.map(|(id, _)| id), what),
        }
    }

    fn pkix_key(&mut self, pkix: Entry<'_>, id: Option<String>, what: &str) -> Option<NoteKey> {
        let pkix_what = format!("`pkixPublicKey` of {what}");
        let pkix_fields = self.entry_fields(pkix, &pkix_what, PKIX_FIELDS)?;
        let Some(pem) = pkix_fields.get("publicKeyPem") else {
            self.error(
                pkix_fields.at,
                format!("{pkix_what} is missing `publicKeyPem`"),
            );
            return None;
        };
        let key = self.pem_key(pem, what)?;
        let mut scheme = None;
        if let Some(e) = pkix_fields.get("signatureAlgorithm") {
            let name = self.string(e.value, e.value_span(), "`signatureAlgorithm`")?;
            if name != "SIGNATURE_ALGORITHM_UNSPECIFIED" {
                let Some(found) = binauthz::signature_algorithm(name) else {
                    self.error(
                        e.value_span(),
                        format!(
                            "{what}: unknown `signatureAlgorithm` `{name}`; expected a Binary \
                             Authorization algorithm such as `ECDSA_P256_SHA256`"
                        ),
                    );
                    return None;
                };
                if found.key_algorithm() != key.algorithm() {
                    self.error(
                        e.value_span(),
                        format!(
                            "{what}: `signatureAlgorithm` `{name}` does not fit the key, which is \
                             {}",
                            key.algorithm()
                        ),
                    );
                    return None;
                }
                let wanted_bits = binauthz::signature_algorithm_rsa_bits(name);
                if let (Some(wanted), Some(bits)) = (wanted_bits, key.rsa_bits())
                    && wanted != bits
                {
                    self.error(
                        e.value_span(),
                        format!(
                            "{what}: `signatureAlgorithm` `{name}` needs a {wanted}-bit RSA \
                             key; this one has {bits} bits"
                        ),
                    );
                    return None;
                }
                scheme = Some(found);
            }
        }
        Some(NoteKey::Pkix {
            id: Some(id.unwrap_or_else(|| binauthz::ni_key_id(&key))),
            key,
            scheme,
        })
    }

    fn pem_key(&mut self, entry: Entry<'_>, what: &str) -> Option<PublicKey> {
        let pem = self.string(entry.value, entry.value_span(), "a PEM public key")?;
        match PublicKey::from_pem(pem) {
            Ok(key) => Some(key),
            Err(e) => {
                self.error(entry.value_span(), format!("{what}: {e}"));
                None
            }
        }
    }

    fn key_file(&mut self, rel: &str, at: Span, what: &str) -> Option<PublicKey> {
        if rel.is_empty() {
            self.error(at, format!("{what}: the key file path is empty"));
            return None;
        }
        let path = self.base_dir.join(rel);
        let text = match read_bounded(&path, KEY_FILE_MAX_BYTES) {
            Ok(text) => text,
            Err(e) => {
                self.error(at, format!("{what}: cannot read key file `{rel}`: {e}"));
                return None;
            }
        };
        match PublicKey::from_pem(&text) {
            Ok(key) => Some(key),
            Err(e) => {
                self.error(at, format!("{what}: key file `{rel}`: {e}"));
                None
            }
        }
    }

    fn predicate_type(&mut self, entry: Entry<'_>, what: &str) -> Option<String> {
        let value = self.string(
            entry.value,
            entry.value_span(),
            &format!("`predicateType` of {what}"),
        )?;
        if value.contains("://") && !value.chars().any(char::is_whitespace) {
            return Some(value.to_owned());
        }
        let hint = signet_core::intoto::cosign_predicate_type(value)
            .map(|uri| format!("; for cosign's `{value}`, write `{uri}`"))
            .unwrap_or_default();
        self.error(
            entry.value_span(),
            format!(
                "{what}: `predicateType` must be a URI such as `https://slsa.dev/provenance/v1`, \
                 not `{value}`{hint}"
            ),
        );
        None
    }

    fn conditions(&mut self, entry: Entry<'_>, what: &str) -> Vec<Condition> {
        let Some(items) = self.list(
            entry.value,
            entry.value_span(),
            &format!("`conditions` of {what}"),
        ) else {
            return Vec::new();
        };
        let mut conditions = Vec::new();
        for item in items {
            let Some(source) = self.string(item, start(item), &format!("a condition of {what}"))
            else {
                continue;
            };
            if let Some((offset, message)) = super::complexity::check(source) {
                let (at, place) = self.position_in_scalar(item, line_column(source, offset));
                self.error(at, format!("{what}: {message}{place}"));
                continue;
            }
            match cel::Program::compile(source) {
                Ok(program) => conditions.push(Condition {
                    source: source.to_owned(),
                    program: Arc::new(program),
                    span: start(item),
                }),
                Err(e) => {
                    let (at, message) = match e.errors.first() {
                        Some(first) => {
                            let (at, place) = self.position_in_scalar(item, first.pos);
                            (at, format!("{}{place}", first.msg))
                        }
                        None => (start(item), e.to_string()),
                    };
                    self.error(at, format!("{what}: condition does not compile: {message}"));
                }
            }
        }
        conditions
    }

    /// The file position of CEL's (line, column) inside the string `node`, when the string is
    /// written on one line without escapes; otherwise the string's start and, for the message,
    /// where in the expression.
    fn position_in_scalar(
        &self,
        node: &Node<'_>,
        (line, column): (isize, isize),
    ) -> (Span, String) {
        let fallback = (
            start(node),
            format!(" (line {line}, column {column} of the condition)"),
        );
        let (Ok(1), Ok(column)) = (usize::try_from(line), usize::try_from(column)) else {
            return fallback;
        };
        if column == 0 || node.span.start.line() != node.span.end.line() {
            return fallback;
        }
        let raw: String = self
            .text
            .chars()
            .skip(node.span.start.index())
            .take(
                node.span
                    .end
                    .index()
                    .saturating_sub(node.span.start.index()),
            )
            .collect();
        let quote = match raw.chars().next() {
            Some('"') if !raw.contains('\\') => 1,
            Some('\'') if !raw.get(1..).is_some_and(|inner| inner.contains("''")) => 1,
            Some('"' | '\'') => return fallback,
            _ => 0,
        };
        let here = start(node);
        (
            Span {
                line: here.line,
                column: here.column + quote + column - 1,
            },
            String::new(),
        )
    }

    fn signed_identity(&mut self, entry: Entry<'_>, attestor: &str) -> Option<SignedIdentity> {
        let what = format!("`signedIdentity` of {attestor}");
        let fields = self.entry_fields(entry, &what, IDENTITY_FIELDS)?;
        let Some(kind) = fields.get("type") else {
            self.error(
                fields.at,
                format!(
                    "{what} is missing `type` (one of {})",
                    quoted_list(IDENTITY_TYPES)
                ),
            );
            return None;
        };
        let kind = self.enumeration(kind, "type", IDENTITY_TYPES, "")?;
        let prefix = fields.get("prefix");
        let signed_prefix = fields.get("signedPrefix");
        if kind != "remapIdentity" {
            for e in [prefix, signed_prefix].into_iter().flatten() {
                self.error(
                    e.key_span(),
                    format!(
                        "{what}: `prefix` and `signedPrefix` only apply to `type: remapIdentity`"
                    ),
                );
            }
            return Some(if kind == "matchRepository" {
                SignedIdentity::MatchRepository
            } else {
                SignedIdentity::MatchDigest
            });
        }
        let prefix_value = |this: &mut Self, e: Option<Entry<'_>>, field: &str| {
            let Some(e) = e else {
                this.error(
                    fields.at,
                    format!("{what} is `remapIdentity` but has no `{field}`"),
                );
                return None;
            };
            let value = this.string(e.value, e.value_span(), &format!("`{field}`"))?;
            if value.is_empty() || value.contains(['@', ' ']) {
                this.error(
                    e.value_span(),
                    format!(
                        "{what}: `{field}` must be a registry or repository name prefix such as \
                         `registry.corp/team`"
                    ),
                );
                return None;
            }
            Some(value.to_owned())
        };
        let prefix = prefix_value(self, prefix, "prefix");
        let signed_prefix = prefix_value(self, signed_prefix, "signedPrefix");
        Some(SignedIdentity::RemapIdentity {
            prefix: prefix?,
            signed_prefix: signed_prefix?,
        })
    }
}

/// CEL's 1-based (line, column) of byte `offset` in `source`.
fn line_column(source: &str, offset: usize) -> (isize, isize) {
    let end = (0..=offset.min(source.len()))
        .rev()
        .find(|&i| source.is_char_boundary(i))
        .unwrap_or(0);
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (
        isize::try_from(line).unwrap_or(isize::MAX),
        isize::try_from(column).unwrap_or(isize::MAX),
    )
}
