//! The data directory's lock: one process at a time writes a hub's data.

use std::path::Path;

use super::StoreError;

/// File in the data directory that one process at a time holds locked (see [`DataLock`]).
pub const LOCK_FILE: &str = "pingan-hub.lock";

/// An exclusive lock on a data directory: a second `pingan-hub serve` or an import into a
/// running hub's directory is refused, naming the process that holds it. The operating system
/// releases it when the process ends, however it ends.
#[derive(Debug)]
pub struct DataLock {
    _file: std::fs::File,
}

impl DataLock {
    /// Takes the lock of `dir`, or says who holds it.
    pub fn take(dir: &Path) -> Result<DataLock, StoreError> {
        use std::io::{Read as _, Seek as _, Write as _};
        let path = dir.join(LOCK_FILE);
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(StoreError::InUse {
                    dir: dir.display().to_string(),
                    holder: holder.trim().to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let me = format!(
            "pid {} ({})",
            std::process::id(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(me.as_bytes()).map_err(io)?;
        Ok(DataLock { _file: file })
    }
}
