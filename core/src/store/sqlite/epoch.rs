//! The key-state epoch (schema v11): verification answers a key's state
//! from memory while nothing changed, and still sees every change committed
//! before the call, by any process.
//!
//! Every state change bumps `key_epoch.epoch` and logs the key's hash in
//! `key_changes`, in the same transaction (triggers). The states the
//! manager caches were read at or after [`Seen::epoch`]; a call first asks whether
//! anything was committed since then at all, by comparing the header of
//! SQLite's WAL index (the first bytes of the `-shm` file, which every
//! writer rewrites when it commits, as SQLite's own readers compare it) with
//! the copy taken at the last check: no system call, no page read. When the
//! header moved, one read of the epoch row says whether a state changed;
//! when the epoch moved, the keys logged since are forgotten. A process that
//! fell further behind than the log reaches forgets every state.

use super::Result;
use rusqlite::{Connection, OptionalExtension};
use std::sync::{Mutex, RwLock};

/// Bytes of the first copy of the WAL-index header (SQLite's `WalIndexHdr`,
/// <https://sqlite.org/walformat.html>): change counter, last frame, page
/// count, salts and checksums.
const HEADER_WORDS: usize = 6;

/// The WAL-index header at one moment (see [`EpochWatch::commit_mark`]):
/// two equal marks mean nothing was committed in between, by any process.
pub(crate) type CommitMark = [u64; HEADER_WORDS];

/// What the cached states were last checked against.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// The WAL-index header read before the check (`None`: not mapped).
    header: Option<[u64; HEADER_WORDS]>,
    /// The database's epoch at the check (`-1`: never checked).
    epoch: i64,
}

/// The header's change counter (`iChange`: bytes 8-11, native order),
/// which every commit (and every restart of the log) moves by one.
fn change_counter(header: &[u64; HEADER_WORDS]) -> u32 {
    let b = header[1].to_ne_bytes();
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

/// The WAL index's first region as SQLite maps it for this process.
///
/// Not a map of our own: a file descriptor of ours on `-shm` would, when
/// closed, drop every POSIX lock this process holds on that file (locks
/// are per process, not per descriptor), and another process would then
/// take this process for gone and truncate the file under SQLite's
/// mapping (SIGBUS), or reuse its read marks. SQLite's VFS shares one
/// mapping per file among the connections of a process and unmaps it when
/// the last of them closes; the writer connection lives as long as this.
struct WalIndex(std::ptr::NonNull<u64>);

// SAFETY: the pointer is only read (volatile loads, see `header`), and the
// memory it points to is shared memory that SQLite itself reads and writes
// from any thread under its own protocol.
unsafe impl Send for WalIndex {}
// SAFETY: as for Send: reads only.
unsafe impl Sync for WalIndex {}

impl WalIndex {
    /// The first WAL-index region of `conn`'s database, if the connection
    /// is in WAL mode with shared memory set up (it has read the file).
    /// Called once, before the connection is shared between threads.
    fn of(conn: &Connection) -> Option<WalIndex> {
        use rusqlite::ffi;
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: `handle` is the open connection's; the file control
        // writes one pointer to the main database's `sqlite3_file`.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast(),
            )
        };
        if rc != ffi::SQLITE_OK || file.is_null() {
            return None;
        }
        // SAFETY: `file` is the live file object SQLite returned; its
        // methods table has xShmMap from version 2 on.
        let map = unsafe {
            let methods = (*file).pMethods;
            if methods.is_null() || (*methods).iVersion < 2 {
                return None;
            }
            (*methods).xShmMap?
        };
        let mut region: *mut std::ffi::c_void = std::ptr::null_mut();
        // SAFETY: region 0 of SQLite's WAL-index size (32 KiB), without
        // extending the file: SQLite returns its existing mapping, or
        // nothing when there is none.
        let rc = unsafe { map(file, 0, 32 * 1024, 0, &mut region) };
        if rc != ffi::SQLITE_OK {
            return None;
        }
        std::ptr::NonNull::new(region.cast::<u64>()).map(WalIndex)
    }

    /// The header's words as they are now.
    fn header(&self) -> [u64; HEADER_WORDS] {
        let base = self.0.as_ptr();
        let mut out = [0u64; HEADER_WORDS];
        for (i, w) in out.iter_mut().enumerate() {
            // SAFETY: region 0 is 32 KiB, mapped while the connection it
            // came from is open (as long as this); the header's 48 bytes are
            // at its start, 8-byte aligned (a page-aligned mapping).
            *w = unsafe { std::ptr::read_volatile(base.add(i)) };
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        out
    }
}

/// Which keys changed since an epoch.
pub(crate) enum Changes {
    /// The keys with these hashes (possibly some changed later too).
    Keys(Vec<[u8; 32]>),
    /// Unknown (the log does not reach back that far, or the database went
    /// back to an older epoch): every state must be forgotten.
    All,
}

/// Watches the state epoch for a cache of key states kept elsewhere (the
/// manager's): says when nothing was committed since the last check, and
/// orders the cache's updates with the checks.
pub(crate) struct EpochWatch {
    wal: Option<WalIndex>,
    seen: RwLock<Seen>,
    /// One check at a time; held also while a state read is remembered, so
    /// that a state read before a change is never cached after the change
    /// was applied.
    check: Mutex<()>,
}

impl EpochWatch {
    /// A watch of the database `conn` is open on, through the WAL index
    /// SQLite maps for it (`None`: in memory, or no shared memory: the
    /// epoch row is read every call). The watch must not outlive `conn`.
    pub(crate) fn new(conn: Option<&Connection>) -> EpochWatch {
        EpochWatch {
            wal: conn.and_then(WalIndex::of),
            seen: RwLock::new(Seen {
                header: None,
                epoch: -1,
            }),
            check: Mutex::new(()),
        }
    }

    fn seen(&self) -> Seen {
        *self.seen.read().unwrap_or_else(|e| e.into_inner())
    }

    /// True if nothing was committed since the last check (no system call,
    /// no page read): every state the cache holds is current.
    pub(crate) fn unchanged(&self) -> bool {
        let Some(wal) = &self.wal else {
            return false;
        };
        self.seen().header == Some(wal.header())
    }

    /// The epoch the last check saw (`-1`: none yet): what is remembered
    /// as read at this epoch is current for a call that checked.
    pub(crate) fn epoch(&self) -> i64 {
        self.seen().epoch
    }

    /// The WAL-index header as it is now (`None`: not mapped). A read begun
    /// after taking a mark sees every commit before it; while the header
    /// still equals the mark, what that read answered is current.
    pub(crate) fn commit_mark(&self) -> Option<CommitMark> {
        self.wal.as_ref().map(WalIndex::header)
    }

    /// Brings the cache up to the latest commit: `read(since)` returns the
    /// database's epoch and the keys changed after `since` (`since < 0`:
    /// the first check, everything), `forget` drops them from the cache.
    pub(crate) fn refresh(
        &self,
        read: impl FnOnce(i64) -> Result<(i64, Changes)>,
        forget: impl FnOnce(Changes),
    ) -> Result<()> {
        let _check = self.check.lock().unwrap_or_else(|e| e.into_inner());
        if self.unchanged() {
            return Ok(()); // another thread checked meanwhile
        }
        // Taken before the read: a commit after this point moves the header
        // again, and the next call checks again.
        let header = self.wal.as_ref().map(WalIndex::header);
        let old = self.seen().epoch;
        let (epoch, changes) = read(old)?;
        forget(changes);
        *self.seen.write().unwrap_or_else(|e| e.into_inner()) = Seen { header, epoch };
        Ok(())
    }

    /// Called after each commit of this process's writer that changed no
    /// key's row: if it is the only commit since the last check (the WAL
    /// index's change counter moved by exactly one), the check still holds
    /// and the next call needs none. Any other commit in between, or a
    /// restart of the log, moves the counter further: the next call checks.
    pub(crate) fn own_commit(&self) {
        let Some(wal) = &self.wal else {
            return;
        };
        let _check = self.check.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        let Some(old) = seen.header else {
            return;
        };
        let now = wal.header();
        if change_counter(&now) == change_counter(&old).wrapping_add(1) {
            seen.header = Some(now);
        }
    }

    /// Runs `insert` (which caches a state read at epoch `read_at`) unless a
    /// check since applied a later epoch: the state may predate a change
    /// that check made the cache forget.
    pub(crate) fn remember(&self, read_at: i64, insert: impl FnOnce()) {
        let _check = self.check.lock().unwrap_or_else(|e| e.into_inner());
        let seen = self.seen();
        if seen.epoch >= 0 && read_at >= seen.epoch {
            insert();
        }
    }
}

/// Solo quota rows (a key's only quota, see `store::quota_fast::one_row`)
/// as `peek_quota` last read them, each with the commit mark taken before
/// its read: while
/// the database's mark still equals it, no process committed anything since,
/// and the row is what a read would give (its window rolled at answer time).
pub(crate) struct PeekMemo(
    quick_cache::sync::Cache<String, (CommitMark, crate::model::quota::QuotaRow)>,
);

/// Keys whose solo rows [`PeekMemo`] holds at most.
const PEEK_MEMO_KEYS: usize = 1024;

impl Default for PeekMemo {
    fn default() -> Self {
        PeekMemo(quick_cache::sync::Cache::new(PEEK_MEMO_KEYS))
    }
}

impl PeekMemo {
    /// The row of `key_id` if it was read under `mark` (nothing committed since).
    pub(crate) fn get(
        &self,
        key_id: &str,
        mark: &CommitMark,
    ) -> Option<crate::model::quota::QuotaRow> {
        self.0
            .get(key_id)
            .and_then(|(m, row)| (m == *mark).then_some(row))
    }

    /// Remembers the row of `key_id` read after taking `mark`.
    pub(crate) fn put(&self, key_id: &str, mark: CommitMark, row: &crate::model::quota::QuotaRow) {
        self.0.insert(key_id.to_string(), (mark, row.clone()));
    }
}

/// The database's epoch and the keys changed after `since` (see [`Changes`]).
/// Changes committed after the epoch was read may be listed too: forgetting
/// more is always safe.
pub(super) fn changes_since(conn: &Connection, since: i64) -> Result<(i64, Changes)> {
    let epoch: i64 = conn
        .prepare_cached("SELECT epoch FROM key_epoch")?
        .query_row([], |r| r.get(0))?;
    if epoch == since {
        return Ok((epoch, Changes::Keys(Vec::new())));
    }
    if since < 0 || epoch < since {
        // First check, or a database put back to an older copy.
        return Ok((epoch, Changes::All));
    }
    let first: Option<i64> = conn
        .prepare_cached("SELECT min(epoch) FROM key_changes WHERE epoch > ?1")?
        .query_row([since], |r| r.get(0))
        .optional()?
        .flatten();
    if first != Some(since + 1) {
        return Ok((epoch, Changes::All));
    }
    let mut stmt = conn.prepare_cached("SELECT key_hash FROM key_changes WHERE epoch > ?1")?;
    let mut rows = stmt.query([since])?;
    let mut keys = Vec::new();
    while let Some(r) = rows.next()? {
        let hash: Vec<u8> = r.get(0)?;
        if let Ok(h) = <[u8; 32]>::try_from(hash.as_slice()) {
            keys.push(h);
        }
    }
    Ok((epoch, Changes::Keys(keys)))
}
