//! PEM files on disk.
//!
//! Certificates are written with mode 0644 and private keys with mode 0600. A key file has mode
//! 0600 from the moment it is created, because it is first written to a temporary file opened
//! with that mode in the same directory and then moved into place, so no reader can open a
//! half-written file. The CA key is never overwritten: [`write_ca`] fails if `ca.key`
//! exists.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Ca, CertError, CertifiedKey};

/// File name of the CA certificate inside a certificate directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// File name of the CA private key inside a certificate directory.
pub const CA_KEY_FILE: &str = "ca.key";

const CERT_MODE: u32 = 0o644;
const KEY_MODE: u32 = 0o600;

/// Writes `dir/<stem>.crt` (mode 0644) and `dir/<stem>.key` (mode 0600), replacing existing
/// files, and returns their paths. Creates `dir` if it is missing.
pub fn write_pem_pair(
    dir: &Path,
    stem: &str,
    pair: &CertifiedKey,
) -> Result<(PathBuf, PathBuf), CertError> {
    create_dir(dir)?;
    let cert_path = dir.join(format!("{stem}.crt"));
    let key_path = dir.join(format!("{stem}.key"));

    let key_temp = write_temp(&key_path, &pair.key_pem, KEY_MODE)?;
    rename(&key_temp, &key_path)?;
    let cert_temp = write_temp(&cert_path, &pair.cert_pem, CERT_MODE)?;
    rename(&cert_temp, &cert_path)?;
    Ok((cert_path, key_path))
}

/// Writes `dir/ca.key` (mode 0600) and `dir/ca.crt` (mode 0644). Creates `dir` if it is missing.
///
/// Fails with [`CertError::CaKeyExists`] if `ca.key` already exists, leaving it untouched.
pub fn write_ca(dir: &Path, ca: &Ca) -> Result<(), CertError> {
    create_dir(dir)?;
    let key_path = dir.join(CA_KEY_FILE);
    let cert_path = dir.join(CA_CERT_FILE);

    // A hard link fails if its target exists, so the key is published without ever replacing
    // another one, even if two runs race.
    let key_temp = write_temp(&key_path, ca.key_pem(), KEY_MODE)?;
    let linked = fs::hard_link(&key_temp, &key_path);
    remove_if_present(&key_temp)?;
    match linked {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            return Err(CertError::CaKeyExists { path: key_path });
        }
        Err(source) => return Err(io_error("failed to write", &key_path, source)),
    }

    let cert_temp = write_temp(&cert_path, ca.cert_pem(), CERT_MODE)?;
    rename(&cert_temp, &cert_path)
}

/// Replaces `path` with `contents` (mode 0644) through a temporary file and a rename, so a
/// reader sees either the old or the new file, never a partial one. Creates the parent directory.
pub fn write_public_file(path: &Path, contents: &str) -> Result<(), CertError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    let temp = write_temp(path, contents, CERT_MODE)?;
    rename(&temp, path)
}

/// Reads a whole text file.
pub fn read_text(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(|source| io_error("failed to read", path, source))
}

/// Writes `contents` to a new temporary file next to `target`, created with `mode`, and returns
/// the temporary path.
fn write_temp(target: &Path, contents: &str, mode: u32) -> Result<PathBuf, CertError> {
    let file_name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = target.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    remove_if_present(&temp)?;

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .map_err(|source| io_error("failed to create", &temp, source))?;
    // The umask may have cleared bits of `mode` at creation. Setting it again on the open,
    // still empty file makes certificates 0644 whatever the umask, and cannot widen a key
    // beyond 0600.
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|source| io_error("failed to set the mode of", &temp, source))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| io_error("failed to write", &temp, source))?;
    Ok(temp)
}

fn rename(from: &Path, to: &Path) -> Result<(), CertError> {
    fs::rename(from, to).map_err(|source| io_error("failed to write", to, source))
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(|source| io_error("failed to create directory", dir, source))
}

fn remove_if_present(path: &Path) -> Result<(), CertError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io_error("failed to remove", path, source)),
    }
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> CertError {
    CertError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn sample_pair(tag: &str) -> CertifiedKey {
        CertifiedKey {
            cert_pem: format!("cert {tag}\n"),
            key_pem: format!("key {tag}\n"),
        }
    }

    #[test]
    fn pair_modes_and_contents() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("nested/certs");
        let (cert, key) = write_pem_pair(&dir, "agent-79", &sample_pair("a")).unwrap();

        assert_eq!(cert, dir.join("agent-79.crt"));
        assert_eq!(key, dir.join("agent-79.key"));
        assert_eq!(mode_of(&key), 0o600);
        assert_eq!(mode_of(&cert), 0o644);
        assert_eq!(fs::read_to_string(&key).unwrap(), "key a\n");
        assert_eq!(fs::read_to_string(&cert).unwrap(), "cert a\n");
    }

    #[test]
    fn pair_overwrite_resets_key_mode() {
        let temp = tempfile::tempdir().unwrap();
        let key_path = temp.path().join("hub.key");
        fs::write(&key_path, "old").unwrap();
        fs::set_permissions(&key_path, Permissions::from_mode(0o644)).unwrap();

        write_pem_pair(temp.path(), "hub", &sample_pair("b")).unwrap();

        assert_eq!(mode_of(&key_path), 0o600);
        assert_eq!(fs::read_to_string(&key_path).unwrap(), "key b\n");
        let leftovers: Vec<_> = fs::read_dir(temp.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name.to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn ca_key_never_overwritten() {
        let temp = tempfile::tempdir().unwrap();
        let ca = Ca::generate("test CA").unwrap();
        write_ca(temp.path(), &ca).unwrap();
        let key_path = temp.path().join(CA_KEY_FILE);
        assert_eq!(mode_of(&key_path), 0o600);
        assert_eq!(mode_of(&temp.path().join(CA_CERT_FILE)), 0o644);

        let other = Ca::generate("other CA").unwrap();
        let err = write_ca(temp.path(), &other).unwrap_err();

        assert!(matches!(err, CertError::CaKeyExists { .. }), "{err}");
        assert!(err.to_string().contains("another --dir"), "{err}");
        assert_eq!(fs::read_to_string(&key_path).unwrap(), ca.key_pem());
    }
}
