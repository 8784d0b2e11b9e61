//! Quotas: limits per key or per owner on requests, tokens or cost, over a
//! UTC day, a UTC calendar month, or no window at all (a credit balance,
//! optionally refilled).
//!
//! - [`TokenManager::consume_quota`] checks every quota of the key and of
//!   its owner and consumes from all of them, or from none: one
//!   `BEGIN IMMEDIATE` transaction, so threads and processes sharing the
//!   database file never grant more than a limit. It commits without an
//!   fsync (WAL, `synchronous=NORMAL`): a process crash loses nothing; a
//!   power loss may roll back the last grants.
//! - [`TokenManager::peek_quota`] answers the same question without consuming.
//! - [`TokenManager::reserve_quota`] holds an estimate for a call whose cost
//!   is known afterwards; [`TokenManager::settle_reservation`] charges the
//!   actual amounts (in full, even above the estimate: the usage happened)
//!   and [`TokenManager::release_reservation`] gives the hold back. A hold
//!   not settled or released within its TTL is released by the next quota
//!   operation on the key (or [`TokenManager::expire_reservations`]), so a
//!   reservation never leaks.
//! - A credit balance (period `none`) has `limit` = credits granted so far;
//!   [`TokenManager::add_credits`] raises it. With a refill, at each UTC
//!   day/month boundary the remaining balance is raised to `refill_amount`
//!   if it is below (unused allowance does not pile up; bought credits stay).

pub use crate::model::quota::*;

use crate::alerts::Levels;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::check_actor;
use crate::manager::TokenManager;
use crate::model::audit::{AuditAction, NewAuditEvent};
use crate::signals::Event;
use crate::store;

/// Rotations followed from a key to its newest successor.
const MAX_ROTATION_HOPS: usize = 16;
/// Reservation TTL when none is given (seconds).
pub const DEFAULT_RESERVATION_TTL: i64 = 300;
const MAX_RESERVATION_TTL: i64 = 7 * 86_400;
const DAY: i64 = 86_400;

fn date_of(t: i64) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date()
}

fn month_start(t: i64) -> i64 {
    let d = date_of(t);
    time::Date::from_calendar_date(d.year(), d.month(), 1)
        .map(|f| f.midnight().assume_utc().unix_timestamp())
        .unwrap_or(0)
}

fn next_month_start(t: i64) -> i64 {
    let d = date_of(month_start(t));
    let (y, m) = match d.month() {
        time::Month::December => (d.year() + 1, time::Month::January),
        m => (d.year(), m.next()),
    };
    time::Date::from_calendar_date(y, m, 1)
        .map(|f| f.midnight().assume_utc().unix_timestamp())
        .unwrap_or(i64::MAX)
}

/// Start of the `period` window holding `t`.
pub(crate) fn window_start(period: QuotaPeriod, t: i64) -> i64 {
    match period {
        QuotaPeriod::Day => t.div_euclid(DAY) * DAY,
        QuotaPeriod::Month => month_start(t),
        QuotaPeriod::None => t,
    }
}

fn next_window(period: QuotaPeriod, start: i64) -> Option<i64> {
    match period {
        QuotaPeriod::Day => Some(start + DAY),
        QuotaPeriod::Month => Some(next_month_start(start)),
        QuotaPeriod::None => None,
    }
}

impl QuotaRow {
    /// Starts a new window (or refills a balance) if `now` is past the current one.
    pub(crate) fn roll(&mut self, now: i64) {
        match (self.period, self.refill) {
            (QuotaPeriod::None, None) => {}
            (QuotaPeriod::None, Some((amount, every))) => {
                let ws = window_start(every, now);
                if ws > self.window_start {
                    let held = self.used + self.reserved;
                    if self.limit.saturating_sub(held) < amount {
                        self.limit = held + amount;
                    }
                    self.window_start = ws;
                    self.alerted = 0;
                    self.dirty = true;
                }
            }
            (p, _) => {
                let ws = window_start(p, now);
                if ws > self.window_start {
                    self.used = 0;
                    self.window_start = ws;
                    self.alerted = 0;
                    self.dirty = true;
                }
            }
        }
    }

    fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used + self.reserved)
    }

    pub(crate) fn view(&self) -> Quota {
        let reset_at = match (self.period, self.refill) {
            (QuotaPeriod::None, Some((_, every))) => next_window(every, self.window_start),
            (p, _) => next_window(p, self.window_start),
        };
        Quota {
            scope: self.scope,
            subject: self.subject.clone(),
            metric: self.metric,
            period: self.period,
            limit: self.limit,
            used: self.used,
            reserved: self.reserved,
            remaining: self.remaining(),
            window_start: self.window_start,
            reset_at,
            refill_amount: self.refill.map(|r| r.0),
            refill_period: self.refill.map(|r| r.1),
        }
    }

    /// Counts `n` as used (a consumption or a settled actual amount, in
    /// full even past the limit) and queues the highest alert level (of
    /// `levels`) reached for the first time in this window (a jump past
    /// several raises the highest: 100 % says 80 % too).
    fn charge(&mut self, n: u64, now: i64, levels: Levels, events: &mut Vec<Event>) {
        if n == 0 {
            return;
        }
        self.used = self.used.saturating_add(n).min(MAX_AMOUNT);
        self.dirty = true;
        if let Some(level) = self.new_alert(levels) {
            events.push(alert(self, level, now));
        }
    }

    /// The highest alert level (percent of the limit) reached if it is new
    /// in this window; the row remembers it, so every process that charges
    /// the row raises each level once.
    fn new_alert(&mut self, levels: Levels) -> Option<i64> {
        let (limit, used) = (self.limit as u128, self.used as u128);
        if limit == 0 {
            return None;
        }
        let top = levels
            .as_slice()
            .iter()
            .rev()
            .map(|&l| l as i64)
            .find(|&l| used * 100 >= limit * l as u128)?;
        (top > self.alerted).then(|| {
            self.alerted = top;
            self.dirty = true;
            top
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Peek,
    Consume,
    Reserve,
}

fn quota_not_found() -> Error {
    Error::new(ErrorKind::NotFound, "no such quota")
}

fn reservation_not_found(id: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("no reservation with id {id:?}"),
    )
}

impl TokenManager {
    /// Creates or changes a quota; the use of the current window is kept.
    pub fn set_quota(&self, spec: &QuotaSpec) -> Result<Quota> {
        check_actor(spec.actor.as_deref())?;
        crate::keys::check_len("subject", &spec.subject, 1, 256)?;
        if spec.limit > MAX_AMOUNT {
            return Err(Error::invalid("limit must be below 2^61"));
        }
        let refill = match (spec.refill_amount, spec.refill_period) {
            (None, None) => None,
            (Some(a), Some(p @ (QuotaPeriod::Day | QuotaPeriod::Month)))
                if spec.period == QuotaPeriod::None && a > 0 && a <= MAX_AMOUNT =>
            {
                Some((a, p))
            }
            _ => {
                return Err(Error::invalid(
                    "refill needs refill_amount > 0 and refill_period day or month, on a quota with period none",
                ));
            }
        };
        let now = self.inner().now();
        let start = match (spec.period, refill) {
            (QuotaPeriod::None, Some((_, every))) => window_start(every, now),
            (p, _) => window_start(p, now),
        };
        self.inner().write(|tx| {
            if spec.scope == QuotaScope::Key {
                let key = tx.keys().get(&spec.subject, now)?.ok_or_else(|| {
                    Error::new(
                        ErrorKind::KeyNotFound,
                        format!("no key with id {:?}", spec.subject),
                    )
                })?;
                if let Some(next) = key.rotated_to {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "key {} was rotated to {next}: set its quotas on the new key",
                            key.id
                        ),
                    ));
                }
            }
            tx.quota().upsert(spec, refill, start, now)?;
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::QuotaSet,
                key_id: (spec.scope == QuotaScope::Key).then(|| spec.subject.clone()),
                display_prefix: None,
                actor: spec.actor.clone(),
                outcome: "ok",
                detail: Some(serde_json::json!({
                    "scope": spec.scope.as_str(), "subject": spec.subject,
                    "metric": spec.metric.as_str(), "period": spec.period.as_str(),
                    "limit": spec.limit, "refill_amount": spec.refill_amount,
                })),
            })?;
            let mut row = tx
                .quota()
                .find(spec.scope, &spec.subject, spec.metric, spec.period)?
                .ok_or_else(quota_not_found)?;
            row.roll(now);
            Ok(row.view())
        })
    }

    /// Removes a quota.
    pub fn delete_quota(
        &self,
        scope: QuotaScope,
        subject: &str,
        metric: QuotaMetric,
        period: QuotaPeriod,
        actor: Option<&str>,
    ) -> Result<()> {
        check_actor(actor)?;
        let now = self.inner().now();
        self.inner().write(|tx| {
            if !tx.quota().delete(scope, subject, metric, period)? {
                return Err(quota_not_found());
            }
            tx.audit().insert(&NewAuditEvent {
                at: now,
                action: AuditAction::QuotaDelete,
                key_id: (scope == QuotaScope::Key).then(|| subject.to_string()),
                display_prefix: None,
                actor: actor.map(str::to_string),
                outcome: "ok",
                detail: Some(serde_json::json!({
                    "scope": scope.as_str(), "subject": subject,
                    "metric": metric.as_str(), "period": period.as_str(),
                })),
            })
        })
    }

    /// The quotas of a key or an owner, as they stand now.
    pub fn list_quotas(&self, scope: QuotaScope, subject: &str) -> Result<Vec<Quota>> {
        let now = self.inner().now();
        let rows = self
            .inner()
            .db
            .read(|c| c.quota().for_subjects(&[(scope, subject)]))?;
        Ok(rows
            .into_iter()
            .map(|mut r| {
                r.roll(now);
                r.view()
            })
            .collect())
    }

    /// Adds `amount` to a credit balance (a quota with period `none`).
    pub fn add_credits(
        &self,
        scope: QuotaScope,
        subject: &str,
        metric: QuotaMetric,
        amount: u64,
    ) -> Result<Quota> {
        if amount == 0 || amount > MAX_AMOUNT {
            return Err(Error::invalid("amount must be positive and below 2^61"));
        }
        let now = self.inner().now();
        self.inner().db.write_relaxed(|tx| {
            let mut row = tx
                .quota()
                .find(scope, subject, metric, QuotaPeriod::None)?
                .ok_or_else(quota_not_found)?;
            row.roll(now);
            row.limit = row.limit.saturating_add(amount).min(MAX_AMOUNT);
            row.dirty = true;
            tx.quota().save(&row, now)?;
            Ok(row.view())
        })
    }

    /// Checks and consumes `amounts` from every quota of key `key_id` and of
    /// its owner, all or nothing.
    pub fn consume_quota(&self, key_id: &str, amounts: &Amounts) -> Result<QuotaDecision> {
        Ok(self.quota_op(key_id, amounts, Mode::Consume, 0)?.0)
    }

    /// Answers what `consume_quota` would, without consuming.
    pub fn peek_quota(&self, key_id: &str, amounts: &Amounts) -> Result<QuotaDecision> {
        Ok(self.quota_op(key_id, amounts, Mode::Peek, 0)?.0)
    }

    /// Holds `amounts` for `ttl_seconds` (default 300) if every quota has room.
    pub fn reserve_quota(
        &self,
        key_id: &str,
        amounts: &Amounts,
        ttl_seconds: Option<i64>,
    ) -> Result<Reserved> {
        let ttl = ttl_seconds.unwrap_or(DEFAULT_RESERVATION_TTL);
        if !(1..=MAX_RESERVATION_TTL).contains(&ttl) {
            return Err(Error::invalid(format!(
                "ttl_seconds must be 1-{MAX_RESERVATION_TTL}"
            )));
        }
        let (decision, reservation) = self.quota_op(key_id, amounts, Mode::Reserve, ttl)?;
        Ok(Reserved {
            reservation,
            decision,
        })
    }

    /// Charges the actual `amounts` of a reserved call and ends the hold.
    /// The actual amounts are charged in full, even beyond the limits.
    pub fn settle_reservation(&self, id: &str, actual: &Amounts) -> Result<QuotaDecision> {
        actual.check()?;
        self.close_reservation(id, Some(actual))
    }

    /// Gives a hold back without charging anything.
    pub fn release_reservation(&self, id: &str) -> Result<QuotaDecision> {
        self.close_reservation(id, None)
    }

    /// Releases every hold past its TTL; returns how many. One transaction
    /// per key, in the one lock order (the key's quota rows, then its
    /// reservations), so a sweep never deadlocks with the calls it races.
    pub fn expire_reservations(&self) -> Result<u64> {
        let now = self.inner().now();
        let mut released = 0;
        loop {
            let keys = self.inner().db.read(|c| c.quota().expired_keys(now, 256))?;
            if keys.is_empty() {
                return Ok(released);
            }
            let mut pass = 0;
            for key_id in &keys {
                pass += self.inner().db.write_relaxed(|tx| {
                    self.lock_quota_rows(tx, key_id)?;
                    tx.quota().expire_reservations(key_id, now)
                })?;
            }
            released += pass;
            if pass == 0 {
                return Ok(released);
            }
        }
    }

    fn close_reservation(&self, id: &str, actual: Option<&Amounts>) -> Result<QuotaDecision> {
        if id.len() != 36 {
            return Err(reservation_not_found(id));
        }
        let now = self.inner().now();
        let levels = self.inner().alerts.quota_levels;
        let mut events = Vec::new();
        let out = self.inner().db.write_relaxed(|tx| {
            // The one lock order: the key's quota rows, then the
            // reservation rows (a consumption or reservation of the same
            // key takes them in this order too).
            let key_id = tx
                .quota()
                .reservation_key(id)?
                .ok_or_else(|| reservation_not_found(id))?;
            self.lock_quota_rows(tx, &key_id)?;
            let (key_id, status) = tx
                .quota()
                .reservation_state(id)?
                .ok_or_else(|| reservation_not_found(id))?;
            tx.quota().expire_reservations(&key_id, now)?;
            let status = if status == "held" {
                tx.quota()
                    .reservation_state(id)?
                    .map(|s| s.1)
                    .unwrap_or(status)
            } else {
                status
            };
            match (status.as_str(), actual) {
                ("held", _) => tx.quota().release_reservation(
                    id,
                    if actual.is_some() {
                        "settled"
                    } else {
                        "released"
                    },
                    now,
                )?,
                // An expired hold was given back already; its usage is still charged.
                ("expired", Some(_)) => tx.quota().mark_reservation(id, "settled", now)?,
                ("expired", None) => {}
                (s, _) => {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("reservation {id} is already {s}"),
                    ));
                }
            }
            let mut rows = self.quota_rows(tx, &key_id)?;
            for r in &mut rows {
                r.roll(now);
                if let Some(a) = actual {
                    r.charge(a.of(r.metric), now, levels, &mut events);
                }
            }
            save_dirty(tx, &rows, now)?;
            Ok(QuotaDecision {
                allowed: true,
                quotas: rows.iter().map(QuotaRow::view).collect(),
                denied_by: None,
            })
        })?;
        for e in events {
            self.inner().signals.push(e);
        }
        Ok(out)
    }

    /// The quota rows of key `key_id` and of its owner; `KEY_NOT_FOUND`
    /// if there is no such key. Key quotas follow rotations: a key replaced
    /// by rotation (still verifying during its overlap) uses the quotas of
    /// its newest successor, where `rotate_key` moved them.
    fn quota_rows(&self, c: &dyn store::Tx, key_id: &str) -> Result<Vec<QuotaRow>> {
        let not_found = || Error::new(ErrorKind::KeyNotFound, format!("no key with id {key_id:?}"));
        let (owner, mut next) = c.quota().key_owner(key_id)?.ok_or_else(not_found)?;
        let mut current = key_id.to_string();
        for _ in 0..MAX_ROTATION_HOPS {
            let Some(n) = next.take() else { break };
            match c.quota().key_owner(&n)? {
                Some((_, after)) => {
                    current = n;
                    next = after;
                }
                None => break, // the successor was deleted: keep the last one found
            }
        }
        c.quota()
            .for_subjects(&[(QuotaScope::Key, &current), (QuotaScope::Owner, &owner)])
    }

    /// Locks the quota rows of key `key_id` and of its owner (a write
    /// reads them `FOR UPDATE`): the first step of the one lock order,
    /// before any reservation row. A deleted key has none to lock (its
    /// holds are still given back).
    fn lock_quota_rows(&self, tx: &dyn store::Tx, key_id: &str) -> Result<()> {
        match self.quota_rows(tx, key_id) {
            Err(e) if e.kind() != ErrorKind::KeyNotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn quota_op(
        &self,
        key_id: &str,
        amounts: &Amounts,
        mode: Mode,
        ttl: i64,
    ) -> Result<(QuotaDecision, Option<Reservation>)> {
        amounts.check()?;
        crate::keys::check_len("key id", key_id, 1, 64)?;
        let now = self.inner().now();
        let mut events = Vec::new();
        let fast_path = self.inner().quota_fast_path;
        let levels = self.inner().alerts.quota_levels;
        if fast_path && mode == Mode::Consume {
            let starts = [
                window_start(QuotaPeriod::Day, now),
                window_start(QuotaPeriod::Month, now),
            ];
            let first = self.inner().alerts.first_quota_level();
            let hint = &self.inner().all_rows_hint;
            let fast = self.inner().db.with(store::Access::Statement, |tx| {
                for &rows in hint.order(key_id) {
                    let out = tx
                        .quota()
                        .consume_fast(rows, key_id, amounts, starts, now, first)?;
                    if out.is_some() {
                        return Ok(out);
                    }
                    if rows == store::quota_fast::Rows::OneRow {
                        hint.missed(key_id);
                    }
                }
                Ok(None)
            })?;
            if let Some(mut rows) = fast {
                // The database checked and charged them (the simple case);
                // the decision is the one the general path gives, from the
                // rows as they were, charged here the same way.
                for r in &mut rows {
                    r.roll(now);
                    r.charge(amounts.of(r.metric), now, levels, &mut events);
                }
                crate::metrics::Metrics::inc(&self.inner().metrics.quota_grants);
                for e in events {
                    self.inner().signals.push(e);
                }
                let decision = QuotaDecision {
                    allowed: true,
                    quotas: rows.iter().map(QuotaRow::view).collect(),
                    denied_by: None,
                };
                return Ok((decision, None));
            }
        }
        if fast_path && mode == Mode::Peek {
            // A key whose only quota is its own, nothing held: one read, or
            // none while nothing was committed since the last one.
            let inner = self.inner();
            let mark = inner.db.epoch().and_then(|w| w.commit_mark());
            let solo = match mark.and_then(|m| inner.peeks.get(key_id, &m)) {
                Some(row) => Some(row),
                None => {
                    let row = inner.db.read(|c| c.quota().solo_row(key_id))?;
                    if let (Some(m), Some(r)) = (mark, &row) {
                        inner.peeks.put(key_id, m, r);
                    }
                    row
                }
            }
            .filter(|r| r.reserved == 0);
            if let Some(mut r) = solo {
                r.roll(now);
                let denied = (amounts.of(r.metric) > r.remaining()).then(|| r.view());
                let decision = QuotaDecision {
                    allowed: denied.is_none(),
                    quotas: vec![r.view()],
                    denied_by: denied,
                };
                return Ok((decision, None));
            }
        }
        let body = |tx: &dyn store::Tx, events: &mut Vec<Event>| {
            let mut rows = self.quota_rows(tx, key_id)?;
            // Holds past their TTL matter only where something is held.
            let held = rows.iter().any(|r| r.reserved > 0);
            if held && mode != Mode::Peek {
                tx.quota().expire_reservations(key_id, now)?;
                rows = self.quota_rows(tx, key_id)?;
            }
            if held && mode == Mode::Peek {
                // A peek writes nothing: holds past their TTL are not
                // released, but they no longer count as reserved.
                for [seq, n] in tx.quota().expired_holds(key_id, now)? {
                    if let Some(r) = rows.iter_mut().find(|r| r.seq == seq) {
                        r.reserved = r.reserved.saturating_sub(n.max(0) as u64);
                    }
                }
            }
            for r in &mut rows {
                r.roll(now);
            }
            let denied = rows
                .iter()
                .find(|r| amounts.of(r.metric) > r.remaining())
                .map(QuotaRow::view);
            let mut reservation = None;
            if denied.is_none() && mode != Mode::Peek {
                let mut items = Vec::new();
                for r in &mut rows {
                    let n = amounts.of(r.metric);
                    if n == 0 {
                        continue;
                    }
                    if mode == Mode::Consume {
                        r.charge(n, now, levels, events);
                    } else {
                        r.reserved += n;
                        r.dirty = true;
                        items.push([r.seq, n as i64]);
                    }
                }
                if mode == Mode::Reserve {
                    let res = Reservation {
                        id: uuid::Uuid::new_v4().to_string(),
                        key_id: key_id.to_string(),
                        amounts: *amounts,
                        status: "held".into(),
                        created_at: now,
                        expires_at: now + ttl,
                    };
                    tx.quota()
                        .insert_reservation(&res, &serde_json::to_string(&items)?)?;
                    reservation = Some(res);
                }
            }
            if mode != Mode::Peek {
                save_dirty(tx, &rows, now)?;
            }
            Ok((
                QuotaDecision {
                    allowed: denied.is_none(),
                    quotas: rows.iter().map(QuotaRow::view).collect(),
                    denied_by: denied,
                },
                reservation,
            ))
        };
        let out = if mode == Mode::Peek {
            self.inner().db.read_snapshot(|c| body(c, &mut events))?
        } else {
            self.inner().db.write_relaxed(|tx| body(tx, &mut events))?
        };
        if mode != Mode::Peek {
            let c = if out.0.allowed {
                &self.inner().metrics.quota_grants
            } else {
                &self.inner().metrics.quota_denials
            };
            crate::metrics::Metrics::inc(c);
        }
        for e in events {
            self.inner().signals.push(e);
        }
        Ok(out)
    }
}

/// Writes the rows a call changed.
fn save_dirty(tx: &dyn store::Tx, rows: &[QuotaRow], now: i64) -> Result<()> {
    for r in rows.iter().filter(|r| r.dirty) {
        tx.quota().save(r, now)?;
    }
    Ok(())
}

fn alert(r: &QuotaRow, level: i64, now: i64) -> Event {
    Event {
        kind: "quota_threshold".into(),
        at: now,
        key_id: (r.scope == QuotaScope::Key).then(|| r.subject.clone()),
        display_prefix: None,
        detail: serde_json::json!({
            "level": level, "scope": r.scope.as_str(), "subject": r.subject,
            "metric": r.metric.as_str(), "period": r.period.as_str(),
            "used": r.used, "limit": r.limit,
        }),
    }
}
