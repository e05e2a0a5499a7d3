//! End-to-end tests of signet against real components.
//!
//! The registry is the real CNCF distribution 2.8 (Debian's `docker-registry`), started per
//! test by [`harness::Registry`] on 127.0.0.1 with throw-away storage, in plain HTTP, basic
//! auth and TLS variants. Install it first, once per machine:
//!
//! ```sh
//! bash scripts/setup-tests.sh
//! cargo test -p signet-cli --test e2e
//! ```
//!
//! Without it the tests fail (they are not skipped) with a message pointing at the script.
//! `SIGNET_REGISTRY_BIN` selects another registry binary.

// Test code: a failed unwrap or expect is a failed test, which is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(
    dead_code,
    reason = "shared by the suites of this binary; not every suite uses every helper"
)]
mod harness;

mod attest;
mod audit;
mod binauthz;
#[allow(dead_code, reason = "helpers shared by the suites that run the binary")]
mod cli;
mod credentials;
mod evidence;
mod explorer;
#[allow(
    dead_code,
    reason = "a test server for the suites; not every suite uses every knob"
)]
mod fake_registry;
mod faults;
mod images;
mod keyless;
mod keys;
mod kube_api;
mod layout;
mod mirror;
mod over_time;
mod pkcs11;
mod platforms;
mod policy;
mod serve;
mod smoke;
mod snapshots;
#[allow(
    dead_code,
    reason = "a test TSA for the suites that need trusted times"
)]
mod tsa;
mod withdraw;
