//! Key states cached per process and the listener that keeps them true:
//! `LISTEN irontoken_keys` drops what changed, and a heartbeat proves the
//! channel alive (see the module docs of `postgres`).

use super::*;

/// Key states cached (by hash) for verification.
pub(super) const STATE_CACHE: usize = 100_000;

/// The notification channel of `api_keys` changes.
pub(super) const CHANNEL: &str = "irontoken_keys";

/// A cached key state and when it was read.
#[derive(Clone)]
pub(super) struct CachedState {
    pub(super) state: Option<Arc<KeyStateCopy>>,
    pub(super) read_at: Instant,
}

/// A [`KeyState`] kept in the cache.
pub(super) struct KeyStateCopy {
    pub(super) seq: i64,
    pub(super) id: String,
    pub(super) revision: i64,
    pub(super) enabled: bool,
    pub(super) revoked_at: Option<i64>,
    pub(super) expires_at: Option<i64>,
}

impl KeyStateCopy {
    pub(super) fn state(&self) -> KeyState {
        KeyState {
            seq: self.seq,
            id: self.id.clone(),
            revision: self.revision,
            enabled: self.enabled,
            revoked_at: self.revoked_at,
            expires_at: self.expires_at,
        }
    }
}

/// Key states by hash, shared with the listener thread.
pub(super) struct States {
    pub(super) cache: quick_cache::sync::Cache<[u8; 32], CachedState>,
    /// Bumped by every invalidation: a state read before a change is not
    /// cached after it.
    pub(super) epoch: AtomicU64,
    /// The origin of [`Self::heard`].
    pub(super) base: Instant,
    /// Nanoseconds after `base` at which the last heartbeat the listener
    /// received was sent (0: none on the current connection): every change
    /// committed before then has been heard and forgotten.
    pub(super) heard: AtomicU64,
    /// Set when the store is dropped: the listener thread ends.
    pub(super) stop: AtomicBool,
}

impl States {
    pub(super) fn forget(&self, hash: Option<[u8; 32]>) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match hash {
            Some(h) => {
                self.cache.remove(&h);
            }
            None => self.cache.clear(),
        }
    }

    /// Records that every change committed before `sent` has been heard.
    pub(super) fn heard(&self, sent: Instant) {
        let at = sent.saturating_duration_since(self.base).as_nanos() as u64;
        self.heard.fetch_max(at.max(1), Ordering::SeqCst);
    }

    /// Forgets the proof of a live channel (the listener's connection ended).
    pub(super) fn deaf(&self) {
        self.heard.store(0, Ordering::SeqCst);
    }

    /// True if a state read at `read_at` may answer now: it or the last
    /// heartbeat heard is younger than `max_staleness`.
    pub(super) fn trusted(&self, read_at: Instant, max_staleness: Duration) -> bool {
        let heard = self.heard.load(Ordering::SeqCst);
        let proof = if heard == 0 {
            read_at
        } else {
            read_at.max(self.base + Duration::from_nanos(heard))
        };
        proof.elapsed() < max_staleness
    }
}

/// The listener thread: forgets the cached state of every key another
/// process (or host) changes, and proves the channel alive with a
/// heartbeat: a notification to itself, on a channel of its own, every
/// quarter of `max_staleness`. A heartbeat not back within `max_staleness`
/// (or any failure) ends the connection; the next one forgets everything
/// (changes may have been missed meanwhile).
pub(super) fn listen(config: &tokio_postgres::Config, tls: &Tls, states: &States, bounds: Bounds) {
    let beat = format!("irontoken_hb_{}", uuid::Uuid::new_v4().simple());
    let every = (bounds.max_staleness / 4).max(Duration::from_millis(5));
    let patience = bounds.max_staleness.max(Duration::from_millis(20));
    let mut backoff = Duration::from_millis(50);
    let mut n: u64 = 0;
    while !states.stop.load(Ordering::SeqCst) {
        let connected = Link::connect(config, tls, Instant::now() + bounds.storage_timeout)
            .and_then(|mut link| {
                link.batch_execute(
                    Instant::now() + bounds.storage_timeout,
                    &format!("LISTEN {CHANNEL}; LISTEN {beat}"),
                )?;
                Ok(link)
            });
        let mut link = match connected {
            Ok(l) => l,
            Err(_) => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        states.forget(None);
        // Heartbeats sent and not yet back: (number, when sent).
        let mut sent: std::collections::VecDeque<(u64, Instant)> = Default::default();
        let mut next = Instant::now();
        while !states.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if sent.front().is_some_and(|(_, at)| at.elapsed() > patience) {
                break;
            }
            if now >= next {
                n += 1;
                sent.push_back((n, now));
                next = now + every;
                if link
                    .batch_execute(now + patience, &format!("NOTIFY {beat}, '{n}'"))
                    .is_err()
                {
                    break;
                }
            }
            if link.wait_notes(next.min(now + every)).is_err() {
                break;
            }
            // In commit order: changes before the heartbeat that follows them.
            while let Some(note) = link.notes.pop_front() {
                if note.channel() == beat {
                    let Ok(k) = note.payload().parse::<u64>() else {
                        continue;
                    };
                    while let Some(&(m, at)) = sent.front() {
                        if m > k {
                            break;
                        }
                        sent.pop_front();
                        if m == k {
                            states.heard(at);
                        }
                    }
                } else {
                    states.forget(hash_of(note.payload()));
                }
            }
        }
        states.deaf();
    }
}

/// The key hash a notification names (hex), or None to forget everything.
pub(super) fn hash_of(payload: &str) -> Option<[u8; 32]> {
    if payload.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(payload.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
