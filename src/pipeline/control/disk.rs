//! Free space on the database's filesystem. A run stops dispatching,
//! resumably, when it falls below `--min-free-space`: checked before the
//! first call and every second after, so the run drains and commits before
//! SQLite finds the disk full (which costs the pages in flight and in the
//! commit window).

use std::path::{Path, PathBuf};

use crate::pipeline::control::shutdown::StopReason;

/// How often a run looks at the free space.
pub const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The database's directory and the least free space a run goes on with.
#[derive(Debug, Clone)]
pub struct DiskCheck {
    dir: PathBuf,
    min_free: u64,
}

impl DiskCheck {
    pub fn new(db: &Path, min_free: u64) -> Self {
        let dir = match db.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        DiskCheck { dir, min_free }
    }

    /// `Some(reason)` when the run must stop for lack of space.
    pub fn check(&self) -> Option<StopReason> {
        verdict(&self.dir, free_bytes(&self.dir)?, self.min_free)
    }
}

/// The threshold rule on its own: below the minimum is a stop.
pub fn verdict(dir: &Path, free: u64, min_free: u64) -> Option<StopReason> {
    (free < min_free).then(|| StopReason::LowDisk { dir: dir.display().to_string(), free, min_free })
}

/// Bytes an unprivileged writer may still use on the filesystem holding `dir`.
#[cfg(unix)]
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `st` a valid out-pointer.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
    (rc == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(not(unix))]
pub fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_stops_below_the_minimum_free_space_and_not_at_or_above_it() {
        let dir = Path::new("/data");
        assert!(verdict(dir, 100 << 20, 256 << 20).is_some());
        assert!(verdict(dir, 256 << 20, 256 << 20).is_none());
        assert!(verdict(dir, 1 << 30, 256 << 20).is_none());
        let reason = verdict(dir, 3 << 20, 256 << 20).unwrap().to_string();
        assert!(reason.contains("/data") && reason.contains("3.0 MiB") && reason.contains("256.0 MiB"), "{reason}");
        assert!(reason.contains("run again"), "{reason}");
    }

    #[test]
    fn free_space_is_read_from_the_filesystem() {
        assert!(free_bytes(Path::new(".")).is_some_and(|n| n > 0));
    }
}
