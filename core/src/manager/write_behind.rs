//! The write-behind buffer: usage counters, failed-verification audit
//! entries and usage records, written by the flusher, by a state change's
//! own transaction, or inline when the buffer is full (see the module
//! docs of `manager` for what a crash can lose).

use super::{Inner, NO_INLINE_FLUSH};
use crate::error::{Error, Result};
use crate::model::audit::NewAuditEvent;
use crate::store;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Identifies repeated failed verifications: key id, display prefix, reason.
pub(super) type FailureKey = (Option<String>, Option<String>, &'static str);

/// A key id as the buffer of use counters holds it: the 16 bytes of a
/// UUID in its canonical text (every id irontoken gives), else the text.
/// A buffered counter then costs no allocation of its own (about 40 bytes
/// against 90), and a 1M-key working set buffers tens of thousands.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum CounterId {
    /// A lowercase hyphenated UUID.
    Uuid([u8; 16]),
    /// Any other id.
    Text(Box<str>),
}

impl CounterId {
    /// The id `id` as held.
    pub(crate) fn of(id: &str) -> CounterId {
        // 36 characters parse only as the hyphenated form; its hex digits
        // may still be upper case, which the text would not round-trip.
        let canonical = id.len() == 36 && !id.bytes().any(|b| b.is_ascii_uppercase());
        match uuid::Uuid::try_parse(id) {
            Ok(u) if canonical => CounterId::Uuid(u.into_bytes()),
            _ => CounterId::Text(id.into()),
        }
    }

    /// The id's text.
    pub(crate) fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            CounterId::Uuid(b) => uuid::Uuid::from_bytes(*b).hyphenated().to_string().into(),
            CounterId::Text(t) => t.as_ref().into(),
        }
    }
}

impl Ord for CounterId {
    /// The order of the ids' texts (the order stores lock counters in).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            // Hex digits and hyphens at fixed places: byte order is text order.
            (CounterId::Uuid(a), CounterId::Uuid(b)) => a.cmp(b),
            (CounterId::Text(a), CounterId::Text(b)) => a.cmp(b),
            _ => self.text().cmp(&other.text()),
        }
    }
}

impl PartialOrd for CounterId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
pub(crate) struct Pending {
    pub usage: HashMap<CounterId, (u64, i64)>,
    pub audit: Vec<NewAuditEvent>,
    /// Usage records not yet written, and their request ids.
    pub records: Vec<crate::model::usage::PendingUsage>,
    record_ids: std::collections::HashSet<String>,
    /// Failed verifications buffered so far: index in `audit`, count, last time.
    failures: HashMap<FailureKey, (usize, u64, i64)>,
}

impl Pending {
    pub(super) fn len(&self) -> usize {
        self.usage.len() + self.audit.len() + self.records.len()
    }

    /// What counts against the flush threshold: a buffered counter weighs
    /// 1/6 (small, and each flush commit makes every reader of the file
    /// drop its page cache: counters of many keys are better written in
    /// fewer, larger commits).
    pub(super) fn pressure(&self) -> usize {
        self.usage.len() / COUNTER_WEIGHT + self.audit.len() + self.records.len()
    }
}

/// Buffered counters per unit of flush pressure (see [`Pending::pressure`]).
/// Six, not eight: at the default threshold a flush is due at 24 576
/// counters, which a hash table of 32 768 slots holds (it grows at 7/8
/// full), with room for what comes in before the flusher takes them; at
/// 32 768 the table doubled to 65 536 slots (2.6 MB) just before each flush.
pub(super) const COUNTER_WEIGHT: usize = 6;

/// The use counters a flush is writing, and the greatest key id a slice
/// committed (slices go in key-id order): a read of the database that no
/// commit overlapped sees exactly the counters up to it, so the buffer's
/// count of a key is its pending uses plus its counter here if above it.
pub(crate) struct InFlight {
    counters: HashMap<CounterId, (u64, i64)>,
    written: Mutex<Option<CounterId>>,
}

impl InFlight {
    /// Records that the slices committed hold every id up to `last`.
    pub(crate) fn committed_through(&self, last: Option<CounterId>) {
        *self.written.lock().unwrap_or_else(|e| e.into_inner()) = last;
    }

    /// A flight of `counters`, none committed yet.
    #[cfg(test)]
    pub(crate) fn for_tests(counters: HashMap<CounterId, (u64, i64)>) -> InFlight {
        InFlight {
            counters,
            written: Mutex::new(None),
        }
    }
}

/// Where writes and moves of buffered counters stood when taken (see
/// [`Inner::carried_nothing_since`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct CarryMarks([u64; 4]);

impl Inner {
    /// Where writes of buffered entries stand: writes that carry the buffer
    /// in one transaction (begun, ended), then moves of counters between
    /// the buffer, a flush's slices and the database (begun, ended).
    pub fn carry_marks(&self) -> CarryMarks {
        use std::sync::atomic::Ordering::SeqCst;
        CarryMarks([
            self.carrying[0].load(SeqCst),
            self.carrying[1].load(SeqCst),
            self.moving[0].load(SeqCst),
            self.moving[1].load(SeqCst),
        ])
    }

    /// True if no write of buffered entries was under way at any time since
    /// `marks` were taken, and no counter moved (a flush took them, a slice
    /// committed, a failed flush put them back): a database read begun
    /// after them plus the buffer read now ([`Self::pending_use`]) counts
    /// every use exactly once. (Otherwise uses may be in neither, or in
    /// both, and a record remembered from them would stay wrong.) A flush
    /// writing slices is no obstacle between its commits.
    pub fn carried_nothing_since(&self, marks: CarryMarks) -> bool {
        let [a, b, c, d] = marks.0;
        a == b && c == d && self.carry_marks() == marks
    }

    /// [`Self::carried_nothing_since`], or else a read that only a slice's
    /// commit overlapped but that did not see it: the WAL-index header was
    /// the one before that commit both before the read (`before`) and after
    /// it (`after`), so the read saw none of the slice and counted its
    /// counters from the flight. (SQLite; `None` headers: no.)
    pub fn counted_exactly(
        &self,
        marks: CarryMarks,
        before: Option<crate::store::sqlite::epoch::CommitMark>,
        after: Option<crate::store::sqlite::epoch::CommitMark>,
    ) -> bool {
        if self.carried_nothing_since(marks) {
            return true;
        }
        let [a, b, c, d] = marks.0;
        let slice = *self.committing.lock().unwrap_or_else(|e| e.into_inner());
        a == b
            && c == d + 1
            && self.carry_marks() == marks
            && before.is_some()
            && before == after
            && slice.is_some_and(|(begun, header)| begun == c && before == Some(header))
    }

    /// Runs `f`, a move of buffered counters, marked as under way.
    fn moving<T>(&self, f: impl FnOnce() -> T) -> T {
        use std::sync::atomic::Ordering::SeqCst;
        self.moving[0].fetch_add(1, SeqCst);
        let out = f();
        self.moving[1].fetch_add(1, SeqCst);
        out
    }

    /// Returns once no `flush` is under way (or the call's bound passed).
    pub fn wait_for_flush(&self) {
        drop(
            self.flushing
                .lock_until(Instant::now() + self.db.call_bound()),
        );
    }

    /// Counts a write of buffered entries as under way until the guard drops.
    pub(super) fn carry(&self) -> Carrying<'_> {
        self.carrying[0].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Carrying(&self.carrying[1])
    }

    /// Buffers one successful use of key `id`; returns the uses of `id`
    /// buffered so far (count, latest time), this one included.
    pub fn record_use(&self, id: &str, now: i64) -> Result<(u64, i64)> {
        let id = CounterId::of(id);
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let total = match p.usage.get_mut(&id) {
            Some((n, t)) => {
                *n += 1;
                *t = (*t).max(now);
                (*n, *t)
            }
            None => {
                p.usage.insert(id, (1, now));
                (1, now)
            }
        };
        self.after_push(p)?;
        Ok(total)
    }

    /// Buffers the audit entry of a failed verification. Identical failures
    /// (same key or prefix, same reason) within one flush window become one
    /// entry whose detail holds `count` and `last_at`, so a flood of bad keys
    /// costs one row per distinct failure and window, not one row each.
    pub fn defer_failure(&self, e: NewAuditEvent) -> Result<()> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let key = (e.key_id.clone(), e.display_prefix.clone(), e.outcome);
        if let Some((_, n, last)) = p.failures.get_mut(&key) {
            *n += 1;
            *last = (*last).max(e.at);
            return Ok(());
        }
        let at = e.at;
        let idx = p.audit.len();
        p.audit.push(e);
        p.failures.insert(key, (idx, 1, at));
        self.after_push(p)
    }

    /// True if so much is buffered that the next buffering call would flush
    /// on the caller's thread (the back-pressure of [`Self::after_push`]).
    pub(crate) fn backlogged(&self) -> bool {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.pressure() >= self.threshold.saturating_mul(8)
    }

    pub(super) fn after_push(&self, p: std::sync::MutexGuard<'_, Pending>) -> Result<()> {
        let n = p.pressure();
        drop(p);
        if n >= self.threshold.saturating_mul(8) && !NO_INLINE_FLUSH.get() {
            self.flush()
        } else {
            if n >= self.threshold {
                // Ordered under the lock, so a flusher busy elsewhere (not
                // waiting, the notification lost) still sees it. Woken once
                // per order: while one is still standing the flusher is
                // not waiting, and every call past the threshold made a
                // futex system call while a long flush ran.
                let ordered = std::mem::replace(
                    &mut self.orders.lock().unwrap_or_else(|e| e.into_inner()).flush,
                    true,
                );
                if !ordered {
                    self.wake.notify_one();
                }
            }
            Ok(())
        }
    }

    /// Buffers a usage record; false if its request id is already buffered.
    pub fn defer_usage(&self, u: crate::model::usage::PendingUsage) -> Result<bool> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !p.record_ids.insert(u.request_id.clone()) {
            return Ok(false);
        }
        p.records.push(u);
        self.after_push(p)?;
        Ok(true)
    }

    /// True if a usage record with this request id is buffered.
    pub fn usage_pending(&self, request_id: &str) -> bool {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.record_ids.contains(request_id)
    }

    /// The buffered use counts of key `id`, not yet in the database: its
    /// pending uses, plus its counter in a flush under way unless a slice
    /// committed it.
    pub fn pending_use(&self, id: &str) -> Option<(u64, i64)> {
        let id = CounterId::of(id);
        let pending = {
            let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.usage.get(&id).copied()
        };
        let flight = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let flying = flight.and_then(|f| {
            let counter = *f.counters.get(&id)?;
            let written = f.written.lock().unwrap_or_else(|e| e.into_inner());
            (written.as_ref() < Some(&id)).then_some(counter)
        });
        match (pending, flying) {
            (Some((n, t)), Some((m, u))) => Some((n + m, t.max(u))),
            (one, other) => one.or(other),
        }
    }

    /// Writes everything buffered, in transactions of at most
    /// [`FLUSH_SLICE`] each, so another write of this process (a quota
    /// consumption, say) waits at most one slice behind a large backlog. What
    /// a failed transaction held stays buffered. Nothing buffered: no
    /// transaction (the write lock is shared with every process on the file).
    pub fn flush(&self) -> Result<()> {
        if HOLDS_FLUSH.get() {
            // Called from inside a write that carries the buffer (this
            // thread holds the lock): that write's commit carries them.
            return Ok(());
        }
        // The whole flush — waiting for one under way, then every slice —
        // ends within the store's bound for one call.
        let deadline = store::deadline(Instant::now() + self.db.call_bound());
        // One at a time: a flush must not answer while another (the
        // flusher's, or a state change carrying buffered entries) still
        // writes entries buffered before it was called.
        let Some(_one) = self.flushing.lock_until(deadline) else {
            return Err(Error::new(
                crate::ErrorKind::Busy,
                "a flush under way did not finish within the call's bound (busy_timeout_ms, storage_timeout_ms on PostgreSQL)",
            ));
        };
        store::within(deadline, || self.flush_now())
    }

    /// [`Self::flush`] once it holds the flush lock.
    pub(super) fn flush_now(&self) -> Result<()> {
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.len() == 0 {
                return Ok(());
            }
            if self.db.readonly() {
                // A write-protected file can never take them: reads, listings
                // and close keep working, and nothing piles up in memory.
                *p = Pending::default();
                return Ok(());
            }
        }
        // The counters leave the buffer for the flight in one move (a
        // swap of tables): a read meanwhile finds them in one place or the
        // other, and one that overlaps the move is not remembered.
        let (mut batch, flight) = self.moving(|| {
            let mut batch = self.take_batch();
            let flight = Arc::new(InFlight {
                counters: std::mem::take(&mut batch.usage),
                written: Mutex::new(None),
            });
            *self.in_flight.lock().unwrap_or_else(|e| e.into_inner()) = Some(flight.clone());
            (batch, flight)
        });
        // Sorted once, outside the move: each slice writes the next ones.
        let counters = sorted(
            flight
                .counters
                .iter()
                .map(|(id, (n, t))| (id.clone(), *n, *t)),
        );
        // Audit entries and usage records are in no cached record: only a
        // write carrying them marks the buffer as carried.
        let _carrying = (batch.audit.len() + batch.records.len() > 0).then(|| self.carry());
        let result = self.fly(&mut batch, &flight, &counters);
        *self.in_flight.lock().unwrap_or_else(|e| e.into_inner()) = None;
        result
    }

    /// Writes `counters` (`flight`'s, sorted) and `batch` slice by slice;
    /// on a failure, puts back what was not written.
    fn fly(
        &self,
        batch: &mut Pending,
        flight: &InFlight,
        counters: &[(CounterId, u64, i64)],
    ) -> Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        let mut next = 0;
        while batch.len() > 0 || next < counters.len() {
            let start = Instant::now();
            let slice = |n: usize| {
                n.is_multiple_of(16)
                    && match start.elapsed() {
                        t if t >= FLUSH_SLICE_MAX => true,
                        t => t >= FLUSH_SLICE && self.db.writers_waiting(),
                    }
            };
            // Committed without an fsync, like a quota consumption: what
            // was buffered survives a process crash once written, and no
            // write of this process waits behind a slice's fsync. The move
            // is marked from the end of the slice's statements (its commit
            // comes next) until `written` counts it: a read that overlaps
            // the commit is not remembered. (Marked once, if the store runs
            // the body again.)
            let committing = std::cell::Cell::new(false);
            let written = self.db.write_relaxed(|tx| {
                let done = write_some(tx, batch, &counters[next..], Some(&slice))?;
                if !committing.replace(true) {
                    // Noted before the move is: a read that sees the move
                    // finds its header.
                    let header = self.db.epoch().and_then(|w| w.commit_mark());
                    let begun = self.moving[0].load(SeqCst) + 1;
                    *self.committing.lock().unwrap_or_else(|e| e.into_inner()) =
                        header.map(|h| (begun, h));
                    self.moving[0].fetch_add(1, SeqCst);
                }
                Ok(done)
            });
            let end = || {
                if committing.get() {
                    self.moving[1].fetch_add(1, SeqCst);
                }
            };
            match written {
                Ok(done) => {
                    crate::metrics::Metrics::inc(&self.metrics.flushes);
                    next += done.usage;
                    if let Some(last) = next.checked_sub(1).and_then(|i| counters.get(i)) {
                        flight.committed_through(Some(last.0.clone()));
                    }
                    end();
                    batch.remove_written(done);
                }
                Err(e) => {
                    crate::metrics::Metrics::inc(&self.metrics.flush_errors);
                    let mut rest = std::mem::take(batch);
                    // Back to the buffer in one move (begun before the
                    // commit failed, if it got that far).
                    if !committing.get() {
                        self.moving[0].fetch_add(1, SeqCst);
                    }
                    *self.in_flight.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    rest.unsorted(counters[next..].iter().cloned());
                    self.restore(rest);
                    self.moving[1].fetch_add(1, SeqCst);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Runs `f` in one write transaction, after writing what is buffered, so
    /// the audit trail keeps this process's order (a large backlog is
    /// flushed first, in slices). If the transaction fails, the buffered
    /// data stays buffered.
    pub fn write<T>(&self, f: impl FnOnce(&dyn store::Tx) -> Result<T>) -> Result<T> {
        self.write_as(store::Access::Write, f)
    }

    /// [`Inner::write`] of many rows at once (bulk creation and import):
    /// SQLite gives the transaction a larger page cache.
    pub fn write_bulk<T>(&self, f: impl FnOnce(&dyn store::Tx) -> Result<T>) -> Result<T> {
        self.write_as(store::Access::Bulk, f)
    }

    fn write_as<T>(
        &self,
        access: store::Access,
        f: impl FnOnce(&dyn store::Tx) -> Result<T>,
    ) -> Result<T> {
        // One bound for the whole call: a flush of a backlog, the wait for
        // a flush under way and the write itself share it.
        if access == store::Access::Bulk {
            return self.write_carrying(access, f);
        }
        let deadline = Instant::now() + self.db.call_bound();
        store::within(deadline, || self.write_carrying(access, f))
    }

    /// [`Self::write_as`] within the call's bound.
    fn write_carrying<T>(
        &self,
        access: store::Access,
        f: impl FnOnce(&dyn store::Tx) -> Result<T>,
    ) -> Result<T> {
        let backlog = self.pending.lock().unwrap_or_else(|e| e.into_inner()).len();
        if backlog > INLINE_MAX {
            self.flush()?;
        }
        // While this write carries buffered entries, a flush waits for it:
        // it must not answer before they are committed (or put back).
        // (A flush that outlasts the bound: this write carries nothing.)
        let reentered = HOLDS_FLUSH.get();
        let held = if reentered {
            None
        } else {
            self.flushing
                .lock_until(store::deadline(Instant::now() + self.db.call_bound()))
        };
        let _carrying = self.carry();
        let mut batch = if reentered || held.is_some() {
            self.take_batch()
        } else {
            Pending::default()
        };
        let held = held.filter(|_| batch.len() > 0);
        let counters = batch.sorted_counters();
        let result = self.db.with(access, |tx| {
            write_some(tx, &batch, &counters, None)?;
            f(tx)
        });
        batch.unsorted(counters);
        if batch.len() > 0 {
            let c = if result.is_ok() {
                &self.metrics.flushes
            } else {
                &self.metrics.flush_errors
            };
            crate::metrics::Metrics::inc(c);
        }
        if result.is_err() {
            self.restore(batch);
        }
        drop(held);
        result
    }

    /// Everything buffered, repeated failures folded into their first entry.
    pub(super) fn take_batch(&self) -> Pending {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut batch = std::mem::take(&mut *p);
        for (_, (idx, n, last)) in batch.failures.drain() {
            if n > 1
                && let Some(e) = batch.audit.get_mut(idx)
            {
                e.detail = Some(serde_json::json!({ "count": n, "last_at": last }));
            }
        }
        batch
    }

    /// Puts back a batch that was not written, before what came since.
    pub(super) fn restore(&self, batch: Pending) {
        if batch.len() == 0 {
            return;
        }
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (id, (n, t)) in batch.usage {
            let e = p.usage.entry(id).or_insert((0, t));
            e.0 += n;
            e.1 = e.1.max(t);
        }
        // The restored entries go first: shift the indices of newer failures.
        let shift = batch.audit.len();
        for (idx, _, _) in p.failures.values_mut() {
            *idx += shift;
        }
        let newer = std::mem::replace(&mut p.audit, batch.audit);
        p.audit.extend(newer);
        p.record_ids.extend(batch.record_ids);
        let newer = std::mem::replace(&mut p.records, batch.records);
        p.records.extend(newer);
    }
}

thread_local! {
    /// This thread holds a manager's flush lock (see [`TimedLock`]).
    static HOLDS_FLUSH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A lock taken with a deadline (std's `Mutex` has none).
#[derive(Default)]
pub(super) struct TimedLock {
    pub(super) held: Mutex<bool>,
    pub(super) freed: Condvar,
}

/// A held [`TimedLock`]; released when dropped.
pub(super) struct TimedGuard<'a>(&'a TimedLock);

impl TimedLock {
    /// Takes the lock, waiting until `deadline` at most (`None` then).
    pub(super) fn lock_until(&self, deadline: Instant) -> Option<TimedGuard<'_>> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        while *held {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            held = self
                .freed
                .wait_timeout(held, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *held = true;
        HOLDS_FLUSH.set(true);
        Some(TimedGuard(self))
    }
}

impl Drop for TimedGuard<'_> {
    fn drop(&mut self) {
        *self.0.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
        HOLDS_FLUSH.set(false);
        self.0.freed.notify_all();
    }
}

/// Longest write transaction of a flush while another write of this process
/// waits; the rest of a backlog follows in further transactions, each behind
/// any write already waiting.
pub(crate) const FLUSH_SLICE: Duration = Duration::from_millis(1);

/// Longest write transaction of a flush when no write of this process waits
/// (other processes' writers wait in SQLite's busy handler meanwhile).
pub(crate) const FLUSH_SLICE_MAX: Duration = Duration::from_millis(50);

/// Buffered entries a state change writes in its own transaction; a larger
/// backlog is flushed (in slices) first.
pub(super) const INLINE_MAX: usize = 256;

/// What one transaction of a flush wrote: the first `audit` entries, the
/// first `usage` counters in key-id order, the first `records` records.
pub(super) struct Written {
    pub(super) audit: usize,
    pub(super) usage: usize,
    pub(super) records: usize,
}

/// Buffered use counters (key id, count, latest use), in key-id order.
pub(super) type Counters = Vec<(CounterId, u64, i64)>;

/// `counters` in key-id order: the order every slice writes them in and the
/// stores lock their rows in.
fn sorted(counters: impl Iterator<Item = (CounterId, u64, i64)>) -> Counters {
    let mut counters: Counters = counters.collect();
    counters.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    counters
}

/// Writes the buffered audit entries, then counters and usage records until
/// `stop(rows written)` says so (`None`: all of them).
pub(super) fn write_some(
    tx: &dyn store::Tx,
    batch: &Pending,
    counters: &[(CounterId, u64, i64)],
    stop: Option<&dyn Fn(usize) -> bool>,
) -> Result<Written> {
    let over = |n: usize| stop.is_some_and(|f| f(n));
    let mut w = Written {
        audit: batch.audit.len(),
        usage: 0,
        records: 0,
    };
    for e in &batch.audit {
        tx.audit().insert(e)?;
    }
    let mut n = 0;
    // Counters go in chunks of 16 (one statement each where the store can).
    // In key-id order, the order the stores lock the counters' rows in
    // (one order for every process: no deadlock between two flushes).
    for chunk in counters.chunks(16) {
        let ids: Vec<_> = chunk.iter().map(|(id, _, _)| id.text()).collect();
        let chunk: Vec<(&str, u64, i64)> = chunk
            .iter()
            .zip(&ids)
            .map(|((_, c, t), id)| (id.as_ref(), *c, *t))
            .collect();
        tx.keys().add_usage_many(&chunk)?;
        w.usage += chunk.len();
        n += chunk.len();
        if over(n) {
            return Ok(w);
        }
    }
    for u in &batch.records {
        tx.usage().insert(u)?;
        w.records += 1;
        n += 1;
        if n.is_multiple_of(16) && over(n) {
            return Ok(w);
        }
    }
    Ok(w)
}

impl Pending {
    /// Drops what one transaction wrote.
    /// Takes the use counters out, in key-id order (sorted once for a
    /// whole flush: a large backlog written slice by slice was sorted again
    /// for every slice).
    pub(super) fn sorted_counters(&mut self) -> Counters {
        // Consumed, not drained: the table is freed now, not when the
        // batch is, while a new one fills for the next flush.
        sorted(
            std::mem::take(&mut self.usage)
                .into_iter()
                .map(|(id, (count, t))| (id, count, t)),
        )
    }

    /// Puts counters not written back (the inverse of [`Self::sorted_counters`]).
    pub(super) fn unsorted(&mut self, counters: impl IntoIterator<Item = (CounterId, u64, i64)>) {
        self.usage
            .extend(counters.into_iter().map(|(id, c, t)| (id, (c, t))));
    }

    /// Drops the audit entries and usage records one transaction wrote
    /// (its counters are tracked by the caller, see [`Written`]).
    pub(super) fn remove_written(&mut self, w: Written) {
        self.audit.drain(..w.audit);
        for u in self.records.drain(..w.records) {
            self.record_ids.remove(&u.request_id);
        }
    }
}

/// A write of buffered entries under way; ends when dropped.
pub(super) struct Carrying<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for Carrying<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::CounterId;

    #[test]
    fn a_counter_id_keeps_its_text_and_orders_as_it() {
        let u = uuid::Uuid::now_v7().hyphenated().to_string();
        assert!(matches!(CounterId::of(&u), CounterId::Uuid(_)));
        let ids = [
            u.clone(),
            u.to_uppercase(),
            u.replace('-', ""),
            format!("{{{u}}}"),
            format!("urn:uuid:{u}"),
            "00000000-0000-0000-0000-000000000000".to_string(),
            "ffffffff-ffff-ffff-ffff-ffffffffffff".to_string(),
            "7".to_string(),
            "legacy-key-1".to_string(),
            "Z".to_string(),
            String::new(),
            "ümlaut".to_string(),
        ];
        for id in &ids {
            assert_eq!(CounterId::of(id).text(), id.as_str());
        }
        // Only the canonical lowercase form is packed: the others stay text.
        assert!(
            ids[1..5]
                .iter()
                .all(|i| matches!(CounterId::of(i), CounterId::Text(_)))
        );
        for a in &ids {
            for b in &ids {
                assert_eq!(
                    CounterId::of(a).cmp(&CounterId::of(b)),
                    a.cmp(b),
                    "{a} vs {b}"
                );
            }
        }
    }
}
