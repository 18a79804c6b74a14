//! The state file: loading it, checking it is writable, and saving it atomically (temporary file, rename, stale temporaries cleaned).
use super::*;

/// Largest state file read (a snapshot of the largest state `--max-bytes` allows is far smaller).
const MAX_STATE_FILE: u64 = 4 << 30;

/// Restore `e` from the state file `path`, if given and there, streamed
/// (the file is not held whole). Whether a state was restored.
pub(crate) fn load_state(e: &mut Enricher, path: &Option<PathBuf>) -> Result<bool, Error> {
    let Some(p) = path else { return Ok(false) };
    // Checked before reading: a FIFO would hang, a device or a huge file be read whole.
    match std::fs::metadata(p) {
        Ok(m) if !m.is_file() => {
            return Err(input_err(
                p,
                None,
                "not a regular file; refused as a state file",
            ));
        }
        Ok(m) if m.len() > MAX_STATE_FILE => {
            return Err(input_err(
                p,
                None,
                format!(
                    "{} bytes, more than a state file can be ({MAX_STATE_FILE}); refused",
                    m.len()
                ),
            ));
        }
        _ => {}
    }
    match std::fs::File::open(p) {
        Ok(f) => {
            e.restore_from(io::BufReader::with_capacity(1 << 16, f))
                .map_err(|err| match err {
                    // One `snapshot refused:` prefix: the library's message has it.
                    Error::Snapshot(m) => Error::Snapshot(format!("{}: {m}", p.display())),
                    err => Error::Snapshot(format!("{}: {err}", p.display())),
                })?;
            Ok(true)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(input_err(p, None, err)),
    }
}

/// The state cannot be saved to `path`: said so, and not like a load error.
fn state_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Input {
        source_name: format!("cannot save state to {}", path.display()),
        line: None,
        reason: reason.to_string(),
    }
}

/// The directory the state file (and its temporary file) is written in.
fn state_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A temporary file of a save is stale (left by a crash during a save)
/// after this long unmodified: a live save writes its file without pause
/// and renames it at once, so only a writer stopped this long can lose its
/// file (its save then fails and says so).
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Remove the temporary files a crash during a save of `path` left behind:
/// in the state file's directory only, only regular files (never a
/// symlink or a directory) named `.<state file name>.tmp.<1-16 letters or
/// digits>` (the pattern of [`save_state`]'s files, and of older versions'
/// `.<name>.tmp.<pid>`), only when unmodified for [`STALE_TEMP`]. Said on
/// stderr; a file that cannot be removed is left and named.
fn clean_stale_temps(path: &Path) {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!(".{name}.tmp.");
    let dir = state_dir(&target);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0u64;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(suffix) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if suffix.is_empty()
            || suffix.len() > 16
            || !suffix.bytes().all(|c| c.is_ascii_alphanumeric())
        {
            continue;
        }
        // `DirEntry::metadata` does not follow a symlink.
        let Ok(m) = entry.metadata() else { continue };
        let old = m
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age >= STALE_TEMP);
        if !m.file_type().is_file() || !old {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) => eprintln!(
                "credlineage: cannot remove stale temporary state file {}: {e}",
                entry.path().display()
            ),
        }
    }
    if removed > 0 {
        eprintln!(
            "credlineage: removed {removed} stale temporary state file{} ({}/{prefix}*, left by an interrupted save)",
            if removed == 1 { "" } else { "s" },
            dir.display()
        );
    }
}

/// Refuse, before any record is read, a `--state` path the state could not
/// be saved to at exit (SPEC 4.2): not guessed from permissions, but tried —
/// a temporary file is created (exclusively) in the target's directory, as
/// the save will, then removed. A directory at the path is refused too (the
/// rename over it would fail).
pub(crate) fn check_state_writable(path: &Path) -> Result<(), Error> {
    if path.file_name().is_none() {
        return Err(state_err(path, "not a file name"));
    }
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(state_err(path, "is a directory"));
    }
    clean_stale_temps(path);
    let dir = state_dir(path);
    let mut last = io::Error::other("no temporary name available");
    for attempt in 0..16u32 {
        let probe = dir.join(format!(
            ".credlineage-probe.{}.{:x}.{attempt}",
            std::process::id(),
            random_seed() & 0xffff_ffff
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(f) => {
                drop(f);
                return std::fs::remove_file(&probe).map_err(|e| state_err(path, e));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(state_err(path, e)),
        }
    }
    Err(state_err(path, last))
}

/// Write the state to `path` atomically: a temporary file in the same directory, synced, then renamed.
///
/// A symlink at `path` is followed: its target is updated, the link kept.
/// The temporary file is created exclusively (`O_EXCL`, a random name: a
/// planted file or symlink is never followed) and removed on every error.
pub(crate) fn save_state(e: &Enricher, path: &Path) -> Result<(), Error> {
    save_state_with(path, |w| e.write_snapshot(w))
}

/// [`save_state`], the snapshot written by `write` (streamed into the
/// temporary file through a buffer; what `write` holds, e.g. a lock, is
/// released before the file is synced and renamed).
pub(crate) fn save_state_with(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<&mut std::fs::File>) -> io::Result<()>,
) -> Result<(), Error> {
    clean_stale_temps(path);
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(t) => t,
            // A link to a file not yet there: its target, as the link names it.
            Err(_) => {
                let t = std::fs::read_link(path).map_err(|err| state_err(path, err))?;
                state_dir(path).join(t)
            }
        },
        _ => path.to_path_buf(),
    };
    let dir = state_dir(&target);
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("state");
    let write = || -> io::Result<()> {
        let mut f = tempfile::Builder::new()
            .prefix(&format!(".{name}.tmp."))
            .tempfile_in(dir)?;
        {
            let mut w = io::BufWriter::with_capacity(1 << 20, f.as_file_mut());
            write(&mut w)?;
            w.flush()?;
        }
        f.as_file().sync_all()?;
        f.persist(&target).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|err| state_err(path, err))
}
