//! RFC 3161 timestamp tokens (bare tokens and whole responses), Sigstore trusted roots'
//! `timestampAuthorities` and cosign's timestamp annotation: nothing panics, every refusal has
//! a message, and whatever verifies was vouched for by the fixture authority at a time within
//! its certificate's validity.
//!
//! The fixture authority and the seed token (fixtures/timestamp/, made by
//! scripts/gen-timestamp-fixtures.sh) let mutations reach the signature and path checks.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use signet_core::timestamp::{
    TimestampAuthority, token_from_cosign_annotation, verify_timestamp,
};

static AUTHORITIES: LazyLock<Vec<TimestampAuthority>> = LazyLock::new(|| {
    vec![
        TimestampAuthority::from_pem_chain(
            "fixture",
            include_str!("../../fixtures/timestamp/tsa-chain.pem"),
        )
        .expect("the fixture chain loads"),
    ]
});

const SIGNED: &[u8] = include_bytes!("../../fixtures/timestamp/signed.bin");

fuzz_target!(|data: &[u8]| {
    match verify_timestamp(data, SIGNED, &AUTHORITIES) {
        Ok(verified) => {
            assert_eq!(verified.authority(), "fixture");
            assert_eq!(verified.tsa_subject(), "CN=Signet Fixture TSA");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    // The same bytes over other signed bytes can never verify: the imprint binds them.
    assert!(verify_timestamp(data, b"other bytes", &AUTHORITIES).is_err());
    if let Ok(authorities) = TimestampAuthority::from_trusted_root_json(data) {
        let _ = verify_timestamp(data, SIGNED, &authorities);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = token_from_cosign_annotation(text);
    }
});
