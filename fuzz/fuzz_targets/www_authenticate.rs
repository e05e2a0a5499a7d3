//! `WWW-Authenticate` challenges: any header gives a challenge or an error, never a panic; a
//! Bearer realm becomes a token URL or an error. Round trip: the challenge parsed, written
//! back with quoted values, parses to the same challenge.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_registry::auth::{Access, Challenge, parse_www_authenticate, scope_for, token_request_url};

fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(challenge) = parse_www_authenticate(header) else {
        return;
    };
    let written = match &challenge {
        Challenge::Basic { realm } if realm.is_empty() => "Basic".to_owned(),
        Challenge::Basic { realm } => format!("Basic realm={}", quoted(realm)),
        Challenge::Bearer {
            realm,
            service,
            scope,
        } => {
            let scopes: Vec<String> = scope
                .iter()
                .flat_map(|s| s.split(' '))
                .map(str::to_owned)
                .chain([scope_for("library/alpine", Access::Pull)])
                .collect();
            let _ = token_request_url(realm, service.as_deref(), &scopes);
            let mut h = format!("Bearer realm={}", quoted(realm));
            if let Some(service) = service {
                h.push_str(&format!(",service={}", quoted(service)));
            }
            if let Some(scope) = scope {
                h.push_str(&format!(",scope={}", quoted(scope)));
            }
            h
        }
    };
    let again = parse_www_authenticate(&written)
        .unwrap_or_else(|e| panic!("{header:?} read as {challenge:?}, written {written:?}: {e}"));
    assert_eq!(again, challenge, "{header:?} written as {written:?}");
});
