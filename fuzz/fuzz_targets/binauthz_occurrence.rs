//! Container Analysis occurrence lists (`signet binauthz import`): any bytes give occurrences,
//! per-item refusals or a file-level error, never a panic; what signet stores for an occurrence
//! reads back as the same occurrence, byte-stable (a second import must add nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_core::binauthz::Occurrence;

fuzz_target!(|data: &[u8]| {
    let Ok(items) = Occurrence::parse_list(data) else {
        return;
    };
    for occurrence in items.into_iter().filter_map(|(_, item)| item.ok()) {
        let _ = occurrence.check_consistent();
        let _ = occurrence.key_ids();
        let stored = occurrence.to_json();
        let again = Occurrence::from_json(&stored).unwrap_or_else(|e| {
            panic!(
                "stored occurrence does not read back: {e}\n{}",
                String::from_utf8_lossy(&stored)
            )
        });
        assert_eq!(again, occurrence, "{}", String::from_utf8_lossy(&stored));
        assert_eq!(again.to_json(), stored);
    }
});
