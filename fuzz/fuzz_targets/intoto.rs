//! in-toto statements: parsing never panics; a parsed statement serialises and parses back the
//! same; the subject check never panics and agrees with the subject list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_core::digest::{Algorithm, Digest};
use signet_core::intoto::Statement;

fuzz_target!(|data: &[u8]| {
    let Ok(statement) = Statement::parse(data) else {
        return;
    };
    let json = statement.to_json();
    let again = Statement::parse(&json).unwrap_or_else(|e| {
        panic!(
            "serialised statement does not parse: {e}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(again, statement, "{}", String::from_utf8_lossy(&json));
    // Every well-formed subject digest is accepted by the check; a fresh one is not listed.
    for subject in &statement.subject {
        for (alg, hex) in &subject.digest {
            let Ok(alg) = alg.parse::<Algorithm>() else {
                continue;
            };
            let Ok(d) = Digest::from_hex(alg, hex) else {
                continue;
            };
            assert!(statement.check_subject(&d).is_ok(), "{d} is listed");
        }
    }
    let _ = statement.check_subject(&Digest::sha256_of(&json));
});
