//! Locating the workspace and the built `lunard` / `lunarctl` binaries.
//!
//! The binaries are looked up in `target/debug/` of the workspace (or `$CARGO_TARGET_DIR/debug/`),
//! unless `LUNARD_BIN` / `LUNARCTL_BIN` name them explicitly.

use std::env;
use std::path::PathBuf;

/// Environment variable that overrides the path of the `lunard` binary.
pub const LUNARD_BIN_ENV: &str = "LUNARD_BIN";
/// Environment variable that overrides the path of the `lunarctl` binary.
pub const LUNARCTL_BIN_ENV: &str = "LUNARCTL_BIN";

/// The root of the Cargo workspace (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// The directory holding debug builds: `$CARGO_TARGET_DIR/debug` or `<workspace>/target/debug`.
pub fn debug_dir() -> PathBuf {
    let target_dir = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    };
    target_dir.join("debug")
}

/// Path of the `lunard` binary; panics with a build hint if it does not exist.
pub fn lunard_bin() -> PathBuf {
    binary(LUNARD_BIN_ENV, "lunard", "lunar-daemon")
}

/// Path of the `lunarctl` binary; panics with a build hint if it does not exist.
pub fn lunarctl_bin() -> PathBuf {
    binary(LUNARCTL_BIN_ENV, "lunarctl", "lunar-cli")
}

fn binary(env_name: &str, file_name: &str, package: &str) -> PathBuf {
    let path = match env::var_os(env_name) {
        Some(path) => PathBuf::from(path),
        None => debug_dir().join(file_name),
    };
    assert!(
        path.is_file(),
        "{file_name} binary not found at {}: build it first (`cargo build -p {package}`, or \
         scripts/test.sh which builds the whole workspace), or point {env_name} at it",
        path.display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let manifest = workspace_root().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("workspace Cargo.toml is readable");
        assert!(
            text.contains("[workspace]"),
            "{} is not the workspace manifest",
            manifest.display()
        );
    }

    #[test]
    fn debug_dir_ends_in_debug() {
        assert!(debug_dir().ends_with("debug"));
    }
}
