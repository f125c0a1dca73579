//! Shared helpers of vakt's integration tests: finding the `vakt` binary
//! that `cargo build` put next to the test executables, and (in
//! [`support`]) the harness of the end-to-end tests of `vakt serve`: a
//! daemon process, an SMTP server on loopback, an HTTP client, mail parsing.

use std::path::PathBuf;

pub mod support;

/// The `vakt` binary of this build (`target/<profile>/vakt`), or `$VAKT_BIN`.
pub fn vakt_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VAKT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/vakt
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("vakt"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} does not exist: build it first (`cargo build -p vakt`), or set VAKT_BIN",
        bin.display()
    );
    bin
}
