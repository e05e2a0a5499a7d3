//! Image references: parsing never panics; a parsed reference prints in a form that parses
//! back to the same reference (normalisation is idempotent), also through serde.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_core::reference::{ImageRef, PinnedRef};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = text.parse::<ImageRef>();
    let pinned = text.parse::<PinnedRef>();
    // A pinned reference is exactly a reference with a digest.
    match (&parsed, &pinned) {
        (Ok(r), Ok(p)) => assert_eq!(r.pinned().as_ref(), Some(p)),
        (Ok(r), Err(_)) => assert!(r.digest().is_none(), "{text:?}: digest but not pinned"),
        (Err(_), Ok(_)) => panic!("{text:?}: pinned but not a reference"),
        (Err(e), Err(_)) => {
            let _ = e.to_string();
            return;
        }
    }
    let Ok(r) = parsed else { return };
    let shown = r.to_string();
    let again: ImageRef = shown
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} prints as {shown:?}, which does not parse: {e}"));
    assert_eq!(again, r, "{text:?} -> {shown:?}");
    assert_eq!(again.to_string(), shown);

    let json = serde_json::to_string(&r).expect("a reference serialises");
    let back: ImageRef = serde_json::from_str(&json).expect("a serialised reference parses");
    assert_eq!(back, r);

    let _ = (r.api_host(), r.name(), r.registry(), r.repository());
    if let Some(tag) = r.tag() {
        let retagged = r
            .with_tag(tag)
            .unwrap_or_else(|e| panic!("{text:?}: its own tag {tag:?} is refused: {e}"));
        assert_eq!(retagged, r);
    }
    if let Some(p) = r.pinned() {
        let shown = p.to_string();
        let again: PinnedRef = shown
            .parse()
            .unwrap_or_else(|e| panic!("{text:?}: pinned {shown:?} does not parse: {e}"));
        assert_eq!(again, p);
        assert_eq!(ImageRef::from(p.clone()), p.to_image_ref());
    }
});
