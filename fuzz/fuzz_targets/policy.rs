//! The policy loader: any text gives a policy or positioned errors, never a panic. Key files
//! are resolved against fixtures/policies, so that the fixture policies (the seeds) load
//! whole and the fuzzer starts deep in the rule and condition checks.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

const BASE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/policies");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match signet_policy::parse(text, Path::new("policy.yaml"), Path::new(BASE_DIR)) {
        Ok(policy) => {
            let _ = policy.summary();
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refused policy says why");
            let _ = errors.to_string();
        }
    }
});
