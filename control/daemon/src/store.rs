//! Crash-safe persistence of the [`Config`] in the state directory.
//!
//! File format: one header line `lunar-state v<version> len=<body bytes> crc32c=<8 hex>`, then
//! the JSON body, then a newline. A torn write (short body) or a flipped bit (checksum) is
//! detected on load.
//!
//! The file is readable by its owner only (mode 0600): it holds CHAP secrets.
//!
//! Saving: write `state.json.tmp`, fsync it, rename the current `state.json` to
//! `state.json.prev` (the previous good copy), rename the temporary file to `state.json`,
//! fsync the directory. A crash at any point leaves either the new file or the previous one
//! readable. Loading takes `state.json`, falling back to `state.json.prev` when the current
//! file is missing or corrupt (the corrupt file is kept as `state.json.corrupt`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::{Config, CONFIG_VERSION};

pub const STATE_FILE: &str = "state.json";
pub const PREVIOUS_FILE: &str = "state.json.prev";
pub const TEMP_FILE: &str = "state.json.tmp";
pub const CORRUPT_FILE: &str = "state.json.corrupt";
/// Largest state file lunard reads.
pub const MAX_STATE_FILE_BYTES: u64 = 64 << 20;

const MAGIC: &str = "lunar-state";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot encode the configuration: {0}")]
    Encode(serde_json::Error),
    #[error(
        "state file {current} is unusable ({current_reason}) and so is the previous copy {previous} ({previous_reason}); \
         fix or remove them to start"
    )]
    NoGoodCopy {
        current: PathBuf,
        current_reason: String,
        previous: PathBuf,
        previous_reason: String,
    },
}

/// Why a state file's bytes are not a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("no header line")]
    NoHeader,
    #[error("bad header: {0}")]
    BadHeader(String),
    #[error("unsupported state file version {0} (this lunard reads version {CONFIG_VERSION})")]
    Version(u32),
    #[error("torn write: header announces {expected} body bytes, file has {found}")]
    Torn { expected: usize, found: usize },
    #[error("checksum mismatch: header says {expected:08x}, body has {found:08x}")]
    Checksum { expected: u32, found: u32 },
    #[error("unexpected bytes after the body")]
    Trailing,
    #[error("body is not a valid configuration: {0}")]
    Body(String),
}

/// Serialize a configuration into the state file format.
pub fn encode(config: &Config) -> Result<Vec<u8>, serde_json::Error> {
    let body = serde_json::to_vec_pretty(config)?;
    let crc = crc32c::crc32c(&body);
    let mut out = format!(
        "{MAGIC} v{CONFIG_VERSION} len={} crc32c={crc:08x}\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out.push(b'\n');
    Ok(out)
}

/// Parse the state file format. Never panics, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<Config, DecodeError> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(DecodeError::NoHeader)?;
    let header = std::str::from_utf8(&bytes[..newline])
        .map_err(|_| DecodeError::BadHeader("not UTF-8".to_string()))?;
    let (len, crc) = parse_header(header)?;
    let rest = &bytes[newline + 1..];
    if rest.len() < len {
        return Err(DecodeError::Torn {
            expected: len,
            found: rest.len(),
        });
    }
    let (body, trailer) = rest.split_at(len);
    if !(trailer.is_empty() || trailer == b"\n") {
        return Err(DecodeError::Trailing);
    }
    let found = crc32c::crc32c(body);
    if found != crc {
        return Err(DecodeError::Checksum {
            expected: crc,
            found,
        });
    }
    serde_json::from_slice(body).map_err(|e| DecodeError::Body(e.to_string()))
}

fn parse_header(header: &str) -> Result<(usize, u32), DecodeError> {
    let bad = |why: &str| DecodeError::BadHeader(why.to_string());
    let mut words = header.split(' ');
    if words.next() != Some(MAGIC) {
        return Err(bad("not a lunar state file"));
    }
    let version = words
        .next()
        .and_then(|w| w.strip_prefix('v'))
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| bad("no version"))?;
    if version != CONFIG_VERSION {
        return Err(DecodeError::Version(version));
    }
    let len = words
        .next()
        .and_then(|w| w.strip_prefix("len="))
        .and_then(|v| v.parse::<usize>().ok())
        .ok_or_else(|| bad("no length"))?;
    let crc = words
        .next()
        .and_then(|w| w.strip_prefix("crc32c="))
        .filter(|v| v.len() == 8)
        .and_then(|v| u32::from_str_radix(v, 16).ok())
        .ok_or_else(|| bad("no checksum"))?;
    if words.next().is_some() {
        return Err(bad("extra words"));
    }
    Ok((len, crc))
}

/// Where the loaded configuration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// No state file: a fresh daemon.
    Empty,
    Current,
    /// The current file was missing or corrupt; the previous copy was used.
    Previous,
}

#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub source: LoadSource,
    /// Things a person should know (a corrupt file set aside...), for the log.
    pub warnings: Vec<String>,
}

/// Saves configurations; a trait so the control logic can be tested with failing storage.
pub trait Persist {
    /// Make `config` durable. On error the previously saved configuration is still the one
    /// a restart loads.
    fn save(&mut self, config: &Config) -> Result<(), StoreError>;
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

enum ReadOutcome {
    Missing,
    Bad(String),
    Good(Box<Config>),
}

impl FileStore {
    pub fn new(dir: &Path) -> FileStore {
        FileStore {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Load the configuration (see the module documentation for the fallback rules).
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let current = self.path(STATE_FILE);
        let previous = self.path(PREVIOUS_FILE);
        let mut warnings = Vec::new();
        let current_reason = match read_state(&current)? {
            ReadOutcome::Good(config) => {
                return Ok(Loaded {
                    config: *config,
                    source: LoadSource::Current,
                    warnings,
                })
            }
            ReadOutcome::Missing => None,
            ReadOutcome::Bad(reason) => Some(reason),
        };
        match (read_state(&previous)?, current_reason) {
            (ReadOutcome::Missing, None) => Ok(Loaded {
                config: Config::default(),
                source: LoadSource::Empty,
                warnings,
            }),
            (ReadOutcome::Good(config), reason) => {
                match reason {
                    Some(reason) => {
                        let aside = self.path(CORRUPT_FILE);
                        fs::rename(&current, &aside).map_err(|source| StoreError::Io {
                            op: "set aside corrupt state file",
                            path: current.clone(),
                            source,
                        })?;
                        warnings.push(format!(
                            "state file {} is corrupt ({reason}); kept it as {} and loaded the previous copy {}",
                            current.display(),
                            aside.display(),
                            previous.display()
                        ));
                    }
                    None => warnings.push(format!(
                        "state file {} is missing; loaded the previous copy {}",
                        current.display(),
                        previous.display()
                    )),
                }
                Ok(Loaded {
                    config: *config,
                    source: LoadSource::Previous,
                    warnings,
                })
            }
            (ReadOutcome::Missing, Some(reason)) => Err(StoreError::NoGoodCopy {
                current,
                current_reason: reason,
                previous,
                previous_reason: "missing".to_string(),
            }),
            (ReadOutcome::Bad(previous_reason), reason) => Err(StoreError::NoGoodCopy {
                current,
                current_reason: reason.unwrap_or_else(|| "missing".to_string()),
                previous,
                previous_reason,
            }),
        }
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| StoreError::Io {
                op: "sync directory",
                path: self.dir.clone(),
                source,
            })
    }
}

fn read_state(path: &Path) -> Result<ReadOutcome, StoreError> {
    let io_error = |source| StoreError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    };
    let len = match fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ReadOutcome::Missing),
        Err(e) => return Err(io_error(e)),
    };
    if len > MAX_STATE_FILE_BYTES {
        return Ok(ReadOutcome::Bad(format!(
            "{len} bytes, more than the {MAX_STATE_FILE_BYTES} a state file may have"
        )));
    }
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ReadOutcome::Missing),
        Err(e) => return Err(io_error(e)),
    };
    Ok(match decode(&bytes) {
        Ok(config) => ReadOutcome::Good(Box::new(config)),
        Err(e) => ReadOutcome::Bad(e.to_string()),
    })
}

impl Persist for FileStore {
    fn save(&mut self, config: &Config) -> Result<(), StoreError> {
        let bytes = encode(config).map_err(StoreError::Encode)?;
        let temp = self.path(TEMP_FILE);
        let current = self.path(STATE_FILE);
        let previous = self.path(PREVIOUS_FILE);
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { op, path, source }
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .map_err(io("create", &temp))?;
        // The file holds CHAP secrets: owner only, even if a leftover temporary file had
        // other permissions.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io("set permissions of", &temp))?;
        file.write_all(&bytes).map_err(io("write", &temp))?;
        file.sync_all().map_err(io("sync", &temp))?;
        drop(file);
        match fs::rename(&current, &previous) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("keep previous copy of", &current)(e)),
        }
        fs::rename(&temp, &current).map_err(io("install", &current))?;
        self.sync_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceConfig, LayoutConfig, LunConfig, TargetConfig, Uid, VolumeConfig};
    use proptest::prelude::*;

    fn sample(n: u32) -> Config {
        Config {
            devices: vec![DeviceConfig {
                name: format!("disk{n}"),
                path: PathBuf::from("/dev/loop0"),
                id: n,
            }],
            pools: Vec::new(),
            volumes: vec![VolumeConfig {
                name: "vol".into(),
                uid: Uid(0x1234_5678_9abc_def0),
                block_size: 512,
                layout: LayoutConfig::Linear {
                    device: format!("disk{n}"),
                    offset_bytes: 0,
                    size_bytes: 1 << 20,
                },
                reservations: None,
                snapshot_of: None,
                clone_of: None,
                dirty_regions: None,
            }],
            targets: vec![TargetConfig {
                iqn: "iqn.2026-11.dev.lunar:t".into(),
                luns: vec![LunConfig {
                    lun: 0,
                    volume: "vol".into(),
                    read_only: false,
                    removable: false,
                }],
                allowed_initiators: Vec::new(),
                chap: None,
            }],
            discovery_chap: None,
            portals: Vec::new(),
            tasks: Vec::new(),
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let config = sample(1);
        let bytes = encode(&config).expect("encode");
        assert!(bytes.starts_with(b"lunar-state v1 len="));
        assert_eq!(decode(&bytes), Ok(config));
    }

    #[test]
    fn torn_and_corrupt_files_are_detected() {
        let bytes = encode(&sample(1)).expect("encode");
        let torn = &bytes[..bytes.len() - 10];
        assert!(matches!(decode(torn), Err(DecodeError::Torn { .. })));
        let mut flipped = bytes.clone();
        let last_body_byte = flipped.len() - 3;
        flipped[last_body_byte] ^= 0x01;
        assert!(matches!(
            decode(&flipped),
            Err(DecodeError::Checksum { .. })
        ));
        assert_eq!(decode(b""), Err(DecodeError::NoHeader));
        let mut extra = bytes.clone();
        extra.extend_from_slice(b"junk");
        assert_eq!(decode(&extra), Err(DecodeError::Trailing));
        let future = String::from_utf8(bytes)
            .expect("utf8")
            .replacen(" v1 ", " v9 ", 1);
        assert_eq!(decode(future.as_bytes()), Err(DecodeError::Version(9)));
    }

    #[test]
    fn access_settings_and_portals_round_trip() {
        use crate::config::{ChapConfig, ChapSecretConfig};
        let mut config = sample(1);
        let chap = ChapConfig {
            initiator: ChapSecretConfig {
                username: "alice".into(),
                secret: "initiator-secret".into(),
            },
            mutual: Some(ChapSecretConfig {
                username: "lunar".into(),
                secret: "target-secret-2".into(),
            }),
        };
        config.targets[0].chap = Some(chap.clone());
        config.targets[0].allowed_initiators = vec!["iqn.2026-11.a.b:host".into()];
        config.discovery_chap = Some(chap);
        config.portals = vec!["[::1]:3261".parse().expect("addr")];
        let bytes = encode(&config).expect("encode");
        assert_eq!(decode(&bytes), Ok(config));
    }

    #[test]
    fn files_without_access_settings_still_load_and_unset_ones_are_left_out() {
        let bytes = encode(&sample(1)).expect("encode");
        let text = String::from_utf8(bytes.clone()).expect("utf8");
        for absent in [
            "discovery_chap",
            "portals",
            "allowed_initiators",
            "\"chap\"",
        ] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        assert_eq!(decode(&bytes), Ok(sample(1)));
    }

    #[test]
    fn state_file_is_private_even_over_a_leftover_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let temp = dir.path().join(TEMP_FILE);
        fs::write(&temp, b"leftover").expect("write");
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut store = FileStore::new(dir.path());
        store.save(&sample(1)).expect("save");
        let mode = fs::metadata(dir.path().join(STATE_FILE)).expect("meta");
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn save_then_load_and_previous_copy_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = FileStore::new(dir.path());
        let empty = store.load().expect("load");
        assert_eq!(empty.source, LoadSource::Empty);
        assert_eq!(empty.config, Config::default());

        store.save(&sample(1)).expect("save 1");
        store.save(&sample(2)).expect("save 2");
        let loaded = store.load().expect("load");
        assert_eq!(loaded.source, LoadSource::Current);
        assert_eq!(loaded.config, sample(2));
        let previous = fs::read(dir.path().join(PREVIOUS_FILE)).expect("prev");
        assert_eq!(decode(&previous), Ok(sample(1)));
        assert!(!dir.path().join(TEMP_FILE).exists());
        let mode = fs::metadata(dir.path().join(STATE_FILE)).expect("meta");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }

    #[test]
    fn torn_current_file_falls_back_to_previous() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = FileStore::new(dir.path());
        store.save(&sample(1)).expect("save 1");
        store.save(&sample(2)).expect("save 2");
        let current = dir.path().join(STATE_FILE);
        let bytes = fs::read(&current).expect("read");
        fs::write(&current, &bytes[..bytes.len() / 2]).expect("tear");

        let loaded = store.load().expect("load");
        assert_eq!(loaded.source, LoadSource::Previous);
        assert_eq!(loaded.config, sample(1));
        assert_eq!(loaded.warnings.len(), 1);
        assert!(
            loaded.warnings[0].contains("torn write"),
            "{:?}",
            loaded.warnings
        );
        assert!(dir.path().join(CORRUPT_FILE).exists());
        // Saving again must not overwrite the good previous copy with the corrupt file.
        store.save(&sample(3)).expect("save 3");
        let previous = fs::read(dir.path().join(PREVIOUS_FILE)).expect("prev");
        assert_eq!(decode(&previous), Ok(sample(1)));
        assert_eq!(store.load().expect("load").config, sample(3));
    }

    #[test]
    fn crash_between_renames_loads_previous() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = FileStore::new(dir.path());
        store.save(&sample(1)).expect("save");
        fs::rename(dir.path().join(STATE_FILE), dir.path().join(PREVIOUS_FILE)).expect("rename");
        let loaded = store.load().expect("load");
        assert_eq!(loaded.source, LoadSource::Previous);
        assert_eq!(loaded.config, sample(1));
        assert!(loaded.warnings[0].contains("missing"));
    }

    #[test]
    fn no_good_copy_is_an_error_naming_both_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path());
        fs::write(dir.path().join(STATE_FILE), b"garbage\n").expect("write");
        let error = store.load().expect_err("corrupt");
        let text = error.to_string();
        assert!(
            text.contains(STATE_FILE) && text.contains(PREVIOUS_FILE),
            "{text}"
        );
        assert!(text.contains("not a lunar state file"), "{text}");
        // Nothing was renamed: a person can inspect the file.
        assert!(dir.path().join(STATE_FILE).exists());
    }

    #[test]
    fn corrupt_body_with_matching_checksum_is_refused() {
        let body = b"{\"devices\": 5}";
        let mut bytes = format!(
            "lunar-state v1 len={} crc32c={:08x}\n",
            body.len(),
            crc32c::crc32c(body)
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        assert!(matches!(decode(&bytes), Err(DecodeError::Body(_))));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_damaged_files(cut in 0usize..2000, flip in 0usize..2000) {
            let mut bytes = encode(&sample(7)).expect("encode");
            if flip < bytes.len() {
                bytes[flip] ^= 0x20;
            }
            bytes.truncate(cut.min(bytes.len()));
            let _ = decode(&bytes);
        }
    }
}
