//! Atomic, explicit report output.
//!
//! The report directory is checked before anything is computed: it is created if missing;
//! an existing non-empty directory is written into only if the tool owns it (a
//! [`MANIFEST`] from an earlier run lists every file in it) or the caller forces it.
//! Nothing is written while the claims run. At the end every file is written to a
//! temporary name in the directory and renamed into place, `report.md` last, so a killed
//! or failed run leaves either the previous report or the new one, never a mix of
//! truncated files; files an earlier run wrote that this run does not rewrite are
//! removed. If a rename fails, the files this run already moved are removed again.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The file listing what the tool wrote, one name a line.
pub const MANIFEST: &str = ".noether-sde-report";

/// A report directory, checked and ready to receive the files.
#[derive(Debug)]
pub struct Output {
    dir: PathBuf,
    previous: Vec<String>,
}

impl Output {
    /// Checks `dir` (creating it if missing) and that it can be written.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `out` for a non-empty directory the tool does not
    /// own (without `force`); [`Error::Io`] if it cannot be created, read or written.
    pub fn open(dir: &Path, force: bool) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, &e))?;
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, &e))? {
            let entry = entry.map_err(|e| Error::io(dir, &e))?;
            entries.push(entry.file_name().to_string_lossy().into_owned());
        }
        let manifest = dir.join(MANIFEST);
        let previous: Vec<String> = match std::fs::read_to_string(&manifest) {
            Ok(text) => text
                .lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&manifest, &e)),
        };
        // owned: a manifest, and every entry is the manifest or listed in it
        let owned = entries.iter().any(|n| n == MANIFEST)
            && entries.iter().all(|n| n == MANIFEST || previous.contains(n));
        if !(force || entries.is_empty() || owned) {
            return Err(Error::invalid(
                "out",
                dir.display(),
                format!(
                    "the directory is not empty and holds files noether-sde did not write \
                     (its {MANIFEST} does not list them); choose another --out or pass --force"
                ),
            ));
        }
        // fail now, not after minutes of computing
        let probe = dir.join(format!(".noether-sde-probe-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(|e| Error::io(dir, &e))?;
        let _ = std::fs::remove_file(&probe);
        Ok(Output {
            dir: dir.to_path_buf(),
            previous,
        })
    }

    /// Writes `files` (name, contents; the last one is the report) atomically as the
    /// module documentation describes, and returns their paths.
    ///
    /// # Errors
    /// [`Error::Io`] with the path and the operating system's message; nothing of this
    /// run is left behind then (no temporary and no renamed file).
    pub fn commit(&self, files: &[(String, Vec<u8>)]) -> Result<Vec<PathBuf>> {
        let mut manifest: String = files.iter().map(|(n, _)| format!("{n}\n")).collect();
        manifest.insert_str(0, &format!("{MANIFEST}\n"));
        // the manifest goes in just before the report, so it is never missing a file
        let mut all: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let report = all.pop();
        all.push((MANIFEST, manifest.as_bytes()));
        all.extend(report);

        let pid = std::process::id();
        let mut temps: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(all.len());
        for (name, bytes) in &all {
            let tmp = self.dir.join(format!(".{name}.tmp-{pid}"));
            let target = self.dir.join(name);
            if let Err(e) = std::fs::write(&tmp, bytes) {
                let _ = std::fs::remove_file(&tmp);
                remove(temps.iter().map(|t| &t.0));
                return Err(Error::io(&target, &e));
            }
            temps.push((tmp, target));
        }
        for (k, (tmp, target)) in temps.iter().enumerate() {
            if k + 1 == temps.len() {
                // stale files of an earlier run go before the report appears
                for old in &self.previous {
                    if old != MANIFEST && !all.iter().any(|(n, _)| n == old) && !old.contains(['/', '\\']) {
                        let _ = std::fs::remove_file(self.dir.join(old));
                    }
                }
            }
            if let Err(e) = std::fs::rename(tmp, target) {
                remove(temps[k..].iter().map(|t| &t.0));
                remove(temps[..k].iter().map(|t| &t.1));
                return Err(Error::io(target, &e));
            }
        }
        Ok(files.iter().map(|(n, _)| self.dir.join(n)).collect())
    }
}

fn remove<'a>(paths: impl Iterator<Item = &'a PathBuf>) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}
