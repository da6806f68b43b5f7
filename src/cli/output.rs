//! Files the CLI writes for the user (proofs, audit checkpoints): never written over a file
//! of another kind (a log, a key, anything else the user keeps), and never left half
//! written.

use std::io::Read;
use std::path::Path;

use super::CliError;

/// The first bytes of every redb database, and so of every weightlog log.
const REDB_MAGIC: &[u8] = b"redb";

/// Writes `bytes` to `path`, a `what` (for messages). A file already there is replaced only
/// when `same_kind` says it is a `what` too; the new bytes go to a temporary file beside it
/// first and are renamed over it, so a failed write leaves the old file as it was.
pub(crate) fn replace_file(
    path: &Path,
    bytes: &[u8],
    what: &str,
    same_kind: impl FnOnce(&[u8]) -> bool,
) -> Result<(), CliError> {
    check_replaceable(path, what, same_kind)?;
    let name = path
        .file_name()
        .ok_or_else(|| CliError::Input(format!("{} is not a file name", path.display())))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    std::fs::write(&temporary, bytes).map_err(CliError::io(&temporary))?;
    std::fs::rename(&temporary, path).map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        CliError::Io {
            path: path.into(),
            source,
        }
    })
}

/// Fails when [`replace_file`] would refuse to write a `what` to `path`: to check before
/// the work that makes the bytes.
pub(crate) fn check_replaceable(
    path: &Path,
    what: &str,
    same_kind: impl FnOnce(&[u8]) -> bool,
) -> Result<(), CliError> {
    match not_replaceable(path, same_kind)? {
        None => Ok(()),
        Some(reason) => Err(CliError::Input(format!(
            "{} {reason}; refusing to overwrite it with {what} (remove it or choose another path)",
            path.display()
        ))),
    }
}

/// Why the file at `path` must not be replaced, or `None` when there is none or it is of
/// the kind being written.
fn not_replaceable(
    path: &Path,
    same_kind: impl FnOnce(&[u8]) -> bool,
) -> Result<Option<&'static str>, CliError> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CliError::Io {
                path: path.into(),
                source,
            });
        }
    };
    if !metadata.is_file() {
        return Ok(Some("exists and is not a regular file"));
    }
    let mut file = std::fs::File::open(path).map_err(CliError::io(path))?;
    // A log can be gigabytes: look at its first bytes before reading the whole file.
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    (&mut file)
        .take(REDB_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(CliError::io(path))?;
    if head == REDB_MAGIC {
        return Ok(Some("is a database (a weightlog log?)"));
    }
    let mut existing = head;
    file.read_to_end(&mut existing)
        .map_err(CliError::io(path))?;
    if same_kind(&existing) {
        Ok(None)
    } else {
        Ok(Some("exists and is not one"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_the_same_kind_is_replaced_and_any_other_is_kept() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("out.txt");
        let is_greeting = |bytes: &[u8]| bytes.starts_with(b"hello");

        replace_file(&path, b"hello 1", "a greeting", is_greeting).expect("new file");
        replace_file(&path, b"hello 2", "a greeting", is_greeting).expect("same kind");
        assert_eq!(std::fs::read(&path).expect("read"), b"hello 2");

        let kept = directory.path().join("kept.txt");
        std::fs::write(&kept, b"something else").expect("write");
        let error = replace_file(&kept, b"hello", "a greeting", is_greeting)
            .expect_err("another kind")
            .to_string();
        assert!(error.contains("exists and is not one"), "{error}");
        assert_eq!(std::fs::read(&kept).expect("read"), b"something else");

        let database = directory.path().join("log.redb");
        std::fs::write(&database, b"redb\x1a\x0a\xa9\x0d\x0a and the rest").expect("write");
        let error = replace_file(&database, b"hello", "a greeting", |_| true)
            .expect_err("a database")
            .to_string();
        assert!(error.contains("is a database"), "{error}");

        let error = replace_file(directory.path(), b"hello", "a greeting", |_| true)
            .expect_err("a directory")
            .to_string();
        assert!(error.contains("not a regular file"), "{error}");

        let names: Vec<_> = std::fs::read_dir(directory.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(
            names.len(),
            3,
            "no temporary file is left behind: {names:?}"
        );
    }
}
