//! Shared helpers of vakt's integration tests: finding the `vakt` binary
//! that `cargo build` put next to the test executables.

use std::path::PathBuf;

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
