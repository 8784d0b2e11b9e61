//! Verification: a presented key checked against its stored state, scopes,
//! rate limits and quotas, answered without blocking where it can.

use super::*;
use crate::manager::CachedKey;

/// A key found for a verification: its record as cached, and its state
/// (enabled, revoked at, expires at) as this call reads it.
type Found = (std::sync::Arc<CachedKey>, bool, Option<i64>, Option<i64>);

/// Reads of a key not in memory before a verification answers with one
/// that a move of buffered counters overlapped (see `find_under_epoch`).
const COUNTED_READS: u32 = 3;

/// What a verification checks besides the key's state and scopes.
#[derive(Default, Clone, Copy)]
struct Checks<'a> {
    rate_limit: bool,
    quota: Option<&'a crate::usage::quota::Amounts>,
    tokens: Option<u64>,
    model: Option<&'a str>,
}

impl<'a> Checks<'a> {
    /// The checks `opts` asks for, its model and token count checked.
    fn of(opts: &'a VerifyOptions, quota: bool) -> Result<Checks<'a>> {
        if let Some(m) = &opts.model {
            models::check_model("model", m)?;
        }
        if opts.tokens.is_some_and(|t| t > models::MAX_TOKENS) {
            return Err(Error::invalid(format!(
                "tokens must be at most {}",
                models::MAX_TOKENS
            )));
        }
        Ok(Checks {
            rate_limit: opts.rate_limit,
            quota: if quota { opts.quota.as_ref() } else { None },
            tokens: opts.tokens,
            model: opts.model.as_deref(),
        })
    }

    /// True when the verification names a model or declares tokens: the
    /// model policies (the key's, its owner's) apply.
    fn llm(&self) -> bool {
        self.model.is_some() || self.tokens.is_some()
    }

    /// The refusal of the key's model policy and its owner's (`owner`), if
    /// any: a model either may not call, or more tokens than either allows
    /// per request or than one of the key's token limits admits at once
    /// (when they apply).
    fn policy(
        &self,
        entry: &CachedKey,
        owner: Option<&crate::model::keys::OwnerRules>,
    ) -> Option<VerifyReason> {
        let record = &entry.record;
        if let Some(m) = self.model
            && (!entry.models.allows(m) || owner.is_some_and(|o| !o.models.allows(m)))
        {
            return Some(VerifyReason::ModelNotAllowed);
        }
        let tokens = self.tokens?;
        let over_max = record
            .max_tokens_per_request()
            .is_some_and(|max| tokens > max)
            || owner.is_some_and(|o| o.too_many(tokens));
        let over_burst = self.rate_limit
            && crate::ratelimit::too_small_for(record.rate_limits(), tokens).is_some();
        (over_max || over_burst).then_some(VerifyReason::RequestTooLarge)
    }
}

impl TokenManager {
    /// Verifies a presented key. A refusal is a normal answer (`valid: false`
    /// with a reason), not an error; errors are storage failures only.
    ///
    /// Every key in `required_scopes` must be among the key's scopes.
    pub fn verify_key(&self, key: &str, required_scopes: &[&str]) -> Result<Verification> {
        self.verify_checked(key, required_scopes, Checks::default(), store::Access::Read)
    }

    /// [`verify_key`](Self::verify_key) if it can answer without a network
    /// round trip — always on SQLite (a read of memory or WAL pages that
    /// never waits for a writer), on PostgreSQL when the key's state and
    /// record are in this process's caches — else `None`, with nothing
    /// recorded: call `verify_key` where blocking is fine. For event loops:
    /// answer on the loop's thread when possible, off it otherwise.
    pub fn try_verify_key(
        &self,
        key: &str,
        required_scopes: &[&str],
    ) -> Result<Option<Verification>> {
        // A backlog this call would have to flush: the caller's blocking path does.
        if self.inner().backlogged() {
            return Ok(None);
        }
        let answer = crate::manager::without_inline_flush(|| {
            self.verify_checked(
                key,
                required_scopes,
                Checks::default(),
                store::Access::Local,
            )
        });
        match answer {
            Err(e) if e.kind() == ErrorKind::Busy => Ok(None),
            other => other.map(Some),
        }
    }

    /// Verifies a key and, in the same call, checks its model policy
    /// (`model`, `tokens`), applies its rate limits (`rate_limit`: the
    /// key's configured limits; its limits in tokens count `tokens`) and
    /// consumes `quota` amounts from its quotas. A key refused for its
    /// state, scopes or model policy consumes nothing; a rate-limited
    /// request consumes no quota; a request denied by a quota has still
    /// taken its rate-limit slot (attempts count against rate limits).
    pub fn verify_key_with(&self, key: &str, opts: &VerifyOptions) -> Result<Verification> {
        self.verify_checked(
            key,
            &opts.required_scopes,
            Checks::of(opts, true)?,
            store::Access::Read,
        )
    }

    /// Corrects the token limits of key `key_id` once a request's actual
    /// token count is known: `verify_key_with(tokens=estimated)` counted
    /// `estimated`, the request used `actual`. The difference is taken
    /// (or given back) in the key's rate-limit store; see
    /// [`crate::ratelimit::RateLimiter::settle`] for the bounds.
    pub fn settle_tokens(&self, key_id: &str, estimated: u64, actual: u64) -> Result<()> {
        if estimated.max(actual) > models::MAX_TOKENS {
            return Err(Error::invalid(format!(
                "token counts must be at most {}",
                models::MAX_TOKENS
            )));
        }
        let record = self.get_key(key_id)?;
        if record.rate_limits.is_empty() {
            return Ok(());
        }
        self.rate_limit_settle(&record.id, &record.rate_limits, estimated, actual)
    }

    /// [`verify_key_with`](Self::verify_key_with) if it needs no network
    /// round trip and no write: no `quota`, and rate limits only where the
    /// key has none or they live in this process (`rate_limit_store =
    /// "local"`); the key's state as [`try_verify_key`](Self::try_verify_key)
    /// reads it. Else `None`, with nothing recorded.
    pub fn try_verify_key_with(
        &self,
        key: &str,
        opts: &VerifyOptions,
    ) -> Result<Option<Verification>> {
        if opts.quota.is_some() || self.inner().backlogged() {
            return Ok(None);
        }
        let checks = Checks::of(opts, false)?;
        let answer = crate::manager::without_inline_flush(|| {
            self.verify_checked(key, &opts.required_scopes, checks, store::Access::Local)
        });
        match answer {
            Err(e) if e.kind() == ErrorKind::Busy => Ok(None),
            other => other.map(Some),
        }
    }

    /// The old name of [`try_verify_key`](Self::try_verify_key).
    #[deprecated(since = "0.2.0", note = "renamed try_verify_key")]
    pub fn verify_key_now(
        &self,
        key: &str,
        required_scopes: &[&str],
    ) -> Result<Option<Verification>> {
        self.try_verify_key(key, required_scopes)
    }

    /// The old name of [`try_verify_key_with`](Self::try_verify_key_with).
    #[deprecated(since = "0.2.0", note = "renamed try_verify_key_with")]
    pub fn verify_key_with_now(
        &self,
        key: &str,
        opts: &VerifyOptions,
    ) -> Result<Option<Verification>> {
        self.try_verify_key_with(key, opts)
    }

    fn verify_checked<S: AsRef<str>>(
        &self,
        key: &str,
        required_scopes: &[S],
        checks: Checks<'_>,
        access: store::Access,
    ) -> Result<Verification> {
        if required_scopes.len() > MAX_REQUIRED_SCOPES {
            return Err(Error::invalid(format!(
                "at most {MAX_REQUIRED_SCOPES} required scopes (got {})",
                required_scopes.len()
            )));
        }
        // One load of the manager's state for the whole verification.
        let inner = self.inner();
        let now = inner.now();
        // An irontoken key (its checksum checked), or a legacy key's shape
        // once the database holds imported legacy keys (looked up by hash).
        let parsed = match format::parse(key) {
            Ok(p) => Some(p),
            Err(_) if self.legacy_lookup(key, access)? => None,
            Err(_) => {
                // Record only the prefix part, and only if it has a prefix's shape.
                let prefix = key
                    .rsplit_once('_')
                    .map(|(p, _)| p)
                    .filter(|p| validate_prefix(p).is_ok())
                    .map(str::to_string);
                return self.refused(now, VerifyReason::Malformed, None, prefix);
            }
        };
        let hash = hash_key(key);
        let found = match inner.db.epoch() {
            Some(watch) => self.find_under_epoch(watch, &hash, access, now)?,
            None => self.find_by_state(&hash, access, now)?,
        };
        let found = found.map(|(entry, enabled, revoked_at, expires_at)| {
            let mut r = entry.record.unpack();
            (r.usage_count, r.last_used_at) = entry.counters(now, 0);
            r.enabled = enabled;
            r.revoked_at = revoked_at;
            r.expires_at = expires_at;
            r.status = r.status_at(now);
            (entry, r)
        });
        let Some((entry, mut record)) = found else {
            let prefix = parsed.map(|p| p.display_prefix.to_string());
            return self.refused(now, VerifyReason::NotFound, None, prefix);
        };
        // The owner's model policy, only for a call that names a model or
        // declares tokens.
        let owner_policy = if checks.llm() && record.status == KeyStatus::Active {
            self.owner_rules(&record.owner, access)?
        } else {
            None
        };
        let mut reason = match record.status {
            KeyStatus::Revoked => VerifyReason::Revoked,
            KeyStatus::Expired => VerifyReason::Expired,
            KeyStatus::Disabled => VerifyReason::Disabled,
            KeyStatus::Active
                if !required_scopes
                    .iter()
                    .all(|s| record.scopes.iter().any(|have| have == s.as_ref())) =>
            {
                VerifyReason::InsufficientScope
            }
            KeyStatus::Active => checks
                .policy(&entry, owner_policy.as_deref())
                .unwrap_or(VerifyReason::Valid),
        };
        let (mut rate, mut quota_decision) = (None, None);
        if reason == VerifyReason::Valid
            && access == store::Access::Local
            && checks.rate_limit
            && !record.rate_limits.is_empty()
            && !inner.rates_are_local()
        {
            // Shared rate limits are a write (the database or Redis): before
            // anything is recorded, leave the answer to the blocking call.
            return Err(Error::new(
                ErrorKind::Busy,
                "the rate limits need a round trip",
            ));
        }
        if reason == VerifyReason::Valid {
            (reason, rate, quota_decision) = self.apply_limits(&record, checks)?;
        }
        let mut v = if reason == VerifyReason::Valid {
            inner.metrics.verification(reason);
            inner.record_use(&record.id, now)?;
            (record.usage_count, record.last_used_at) = entry.counters(now, 1);
            inner.signals.activity(&record.id, 1, now);
            Verification {
                valid: true,
                reason,
                record: Some(record),
                rate_limit: None,
                quota: None,
            }
        } else {
            let prefix = Some(record.display_prefix.clone());
            self.refused(now, reason, Some(record), prefix)?
        };
        v.rate_limit = rate;
        v.quota = quota_decision;
        Ok(v)
    }

    /// The model policy of `owner`: from memory while the state epoch has
    /// not moved since it was read (SQLite: a policy's change moves it),
    /// else one point read (on PostgreSQL, every call: a round trip).
    fn owner_rules(
        &self,
        owner: &str,
        access: store::Access,
    ) -> Result<Option<std::sync::Arc<crate::model::keys::OwnerRules>>> {
        let inner = self.inner();
        let epoch = inner.db.epoch().map(|w| w.epoch()).filter(|e| *e >= 0);
        if let Some(now) = epoch
            && let Some((at, rules)) = inner.owner_rules.get(owner)
            && at == now
        {
            return Ok(rules);
        }
        let (json, read_at) = inner.db.with(access, |c| c.keys().owner_policy_at(owner))?;
        let rules = json
            .map(|j| models::ModelPolicy::from_json(&j).map(|p| std::sync::Arc::new(p.rules())))
            .transpose()?;
        if epoch.is_some() && read_at >= 0 {
            // Read at `read_at`: current for every call whose check saw it.
            inner
                .owner_rules
                .insert(owner.to_string(), (read_at, rules.clone()));
        }
        Ok(rules)
    }

    /// The key with this hash and its state (enabled, revoked, expiry)
    /// under the state epoch: from memory while no state changed since the
    /// last check, after forgetting the keys that changed otherwise; a key
    /// not in memory is read (one statement) and remembered.
    fn find_under_epoch(
        &self,
        watch: &crate::store::sqlite::epoch::EpochWatch,
        hash: &[u8; 32],
        access: store::Access,
        now: i64,
    ) -> Result<Option<Found>> {
        let inner = self.inner();
        if !watch.unchanged() {
            watch.refresh(
                |since| inner.db.with(access, |c| c.keys().changes_since(since)),
                |changes| inner.forget_keys(changes),
            )?;
        }
        let entry = match inner.cached_current(hash) {
            Some(entry) => entry,
            None => {
                // A read that a move of buffered counters overlapped (a
                // flush's slice committing: a few ms) may count some uses
                // twice or not at all: read again, a few times, before
                // answering with it unremembered.
                let mut tries = 0;
                loop {
                    let marks = inner.carry_marks();
                    let before = watch.commit_mark();
                    let read = inner.db.with(access, |c| c.keys().get_by_hash(hash, now))?;
                    let Some((r, revision, read_at)) = read else {
                        return Ok(None);
                    };
                    let entry = CachedKey::new(self.with_pending(r), revision);
                    tries += 1;
                    if inner.counted_exactly(marks, before, watch.commit_mark()) {
                        watch.remember(read_at, || inner.cache_key(hash, &entry));
                    } else if tries < COUNTED_READS {
                        continue;
                    }
                    break entry;
                }
            }
        };
        let r = &entry.record;
        let (enabled, revoked_at, expires_at) = (r.enabled(), r.revoked_at(), r.expires_at());
        Ok(Some((entry, enabled, revoked_at, expires_at)))
    }

    /// The key with this hash with its state read from the database on
    /// every call (PostgreSQL, whose store keeps its own notified cache of
    /// states; `strict`); the rest of the record from memory while its
    /// revision matches.
    fn find_by_state(
        &self,
        hash: &[u8; 32],
        access: store::Access,
        now: i64,
    ) -> Result<Option<Found>> {
        let inner = self.inner();
        let marks = inner.carry_marks();
        inner.db.with(access, |c| {
            let mut found = None;
            c.keys().with_state_by_hash(hash, &mut |st| {
                let Some(st) = st else {
                    return Ok(());
                };
                let entry = match inner.cached_key(hash, st.revision) {
                    Some(entry) => entry,
                    None => match c.keys().get_by_seq(st.seq, now)? {
                        Some((r, rev)) if r.id == st.id => {
                            let entry = CachedKey::new(self.with_pending(r), rev);
                            if inner.carried_nothing_since(marks) {
                                inner.cache_key(hash, &entry);
                            }
                            entry
                        }
                        _ => return Ok(()), // deleted in between
                    },
                };
                found = Some((entry, st.enabled, st.revoked_at, st.expires_at));
                Ok(())
            })?;
            Ok(found)
        })
    }

    /// The key's rate limits, then its quota, for a key that is otherwise
    /// valid (see [`TokenManager::verify_key_with`] for the order).
    fn apply_limits(
        &self,
        record: &KeyRecord,
        checks: Checks<'_>,
    ) -> Result<(
        VerifyReason,
        Option<crate::ratelimit::Decision>,
        Option<crate::usage::quota::QuotaDecision>,
    )> {
        let mut rate = None;
        if checks.rate_limit && !record.rate_limits.is_empty() {
            // Limits in tokens count the request's tokens (none declared:
            // it needs a bucket that is not empty and takes nothing).
            let weighted = record
                .rate_limits
                .iter()
                .any(|l| l.unit == crate::ratelimit::Unit::Tokens);
            let cost = if weighted {
                checks.tokens.unwrap_or(0)
            } else {
                1
            };
            let d = self.rate_limit_decide_cost(&record.id, &record.rate_limits, true, cost)?;
            if !d.allowed {
                crate::metrics::Metrics::inc(&self.inner().metrics.rate_limit_denials);
                return Ok((VerifyReason::RateLimited, Some(d), None));
            }
            rate = Some(d);
        }
        let Some(amounts) = checks.quota else {
            return Ok((VerifyReason::Valid, rate, None));
        };
        let d = self.consume_quota(&record.id, amounts)?;
        let reason = if d.allowed {
            VerifyReason::Valid
        } else {
            VerifyReason::UsageExceeded
        };
        Ok((reason, rate, Some(d)))
    }

    /// The answer for a refused key: counted, audited (buffered), with the
    /// record (plus this process's buffered uses) when the key was found.
    fn refused(
        &self,
        now: i64,
        reason: VerifyReason,
        record: Option<KeyRecord>,
        display_prefix: Option<String>,
    ) -> Result<Verification> {
        self.inner().metrics.verification(reason);
        self.fail(
            now,
            record.as_ref().map(|r| r.id.clone()),
            display_prefix,
            reason,
        )?;
        Ok(Verification {
            valid: false,
            reason,
            record,
            rate_limit: None,
            quota: None,
        })
    }

    fn fail(
        &self,
        now: i64,
        key_id: Option<String>,
        display_prefix: Option<String>,
        reason: VerifyReason,
    ) -> Result<()> {
        // Refusals of a good key by its limits or policy are no sign of
        // guessing: they do not count towards a failure burst.
        if !matches!(
            reason,
            VerifyReason::RateLimited
                | VerifyReason::UsageExceeded
                | VerifyReason::ModelNotAllowed
                | VerifyReason::RequestTooLarge
        ) && let Some(p) = display_prefix.as_deref()
        {
            self.inner().signals.failure(p, key_id.as_deref(), now);
        }
        self.inner().defer_failure(NewAuditEvent {
            at: now,
            action: AuditAction::KeyVerify,
            key_id,
            display_prefix,
            actor: None,
            outcome: reason.code(),
            detail: None,
        })
    }
}
