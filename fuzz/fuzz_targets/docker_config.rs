//! Docker `config.json`: any bytes give a configuration or an error, never a panic, and the
//! credential lookup over it (keys with schemes, paths, Docker Hub aliases; base64 `auth`
//! fields) never panics either. Helpers are looked up, never run.
//!
//! Input: the registry to look up on the first line, then the file. No newline: the bytes are
//! the file, looked up for a few fixed registries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_registry::fuzzing::docker_config_credentials;

const REGISTRIES: [&str; 4] = ["docker.io", "ghcr.io", "localhost:5000", "127.0.0.1:5000"];

fuzz_target!(|data: &[u8]| {
    let (first, file) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&[][..], data),
    };
    if let Ok(registry) = std::str::from_utf8(first) {
        let _ = docker_config_credentials(file, registry);
    }
    for registry in REGISTRIES {
        if let Err(e) = docker_config_credentials(data, registry) {
            let _ = e.to_string();
        }
    }
});
