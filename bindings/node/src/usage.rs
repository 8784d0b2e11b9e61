//! TokenManager methods on sessions, usage records, quotas and
//! reservations, agent budgets, tokens and leases, with `*Async` variants.

use super::*;

#[napi]
impl TokenManager {
    /// `createSession` off the JS thread.
    #[napi(
        catch_unwind,
        ts_args_type = "options: CreateSessionOptions",
        ts_return_type = "Promise<Session>"
    )]
    pub fn create_session_async(&self, options: Value) -> Result<AsyncTask<Job<Json>>, Code> {
        let r: irontoken::NewSession = req(options, "options")?;
        let tm = self.core()?;
        Ok(Job::new(move || json_ans(tm.create_session(&r))))
    }

    /// `endSession` off the JS thread.
    #[napi(
        catch_unwind,
        ts_args_type = "sessionId: string, options?: { reason?: string }",
        ts_return_type = "Promise<Session>"
    )]
    pub fn end_session_async(
        &self,
        session_id: String,
        options: Option<Value>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let o: EndOptions = req_or_default(options, "options")?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.end_session(&session_id, o.reason.as_deref()))
        }))
    }

    /// Creates a session: `{ owner, keyId?, sessionType?, metadata?, ttlSeconds?, idleTimeoutSeconds? }`.
    #[napi(
        catch_unwind,
        ts_args_type = "options: CreateSessionOptions",
        ts_return_type = "Session"
    )]
    pub fn create_session(&self, options: Value) -> Result<Json, Code> {
        let r: irontoken::NewSession = req(options, "options")?;
        ans(self.core()?.create_session(&r))
    }

    /// The session `sessionId` (status computed now).
    #[napi(catch_unwind, ts_return_type = "Session")]
    pub fn get_session(&self, session_id: String) -> Result<Json, Code> {
        ans(self.core()?.get_session(&session_id))
    }

    /// Slides the idle expiry of a live session (never past the absolute one).
    #[napi(catch_unwind, ts_return_type = "Session")]
    pub fn touch_session(&self, session_id: String) -> Result<Json, Code> {
        ans(self.core()?.touch_session(&session_id))
    }

    /// Changes `status` ("active" | "paused") and/or `metadata` of a live session.
    #[napi(
        catch_unwind,
        ts_args_type = "sessionId: string, update: { status?: 'active' | 'paused'; metadata?: Record<string, unknown> }",
        ts_return_type = "Session"
    )]
    pub fn update_session(&self, session_id: String, update: Value) -> Result<Json, Code> {
        let u: irontoken::SessionUpdate = req(update, "update")?;
        ans(self.core()?.update_session(&session_id, &u))
    }

    /// Ends a live session.
    #[napi(
        catch_unwind,
        ts_args_type = "sessionId: string, options?: { reason?: string }",
        ts_return_type = "Session"
    )]
    pub fn end_session(&self, session_id: String, options: Option<Value>) -> Result<Json, Code> {
        let o: EndOptions = req_or_default(options, "options")?;
        ans(self.core()?.end_session(&session_id, o.reason.as_deref()))
    }

    /// Checks a live session on a request (its fingerprint, if bound) and
    /// records the activity.
    #[napi(
        catch_unwind,
        ts_args_type = "sessionId: string, options?: { fingerprint?: string }",
        ts_return_type = "Session"
    )]
    pub fn verify_session(&self, session_id: String, options: Option<Value>) -> Result<Json, Code> {
        let o: FingerprintOptions = req_or_default(options, "options")?;
        ans(self
            .core()?
            .verify_session(&session_id, o.fingerprint.as_deref()))
    }

    /// Replaces a live session by a new id; the old one is refused from now on.
    #[napi(
        catch_unwind,
        ts_args_type = "sessionId: string, options?: { fingerprint?: string }",
        ts_return_type = "Session"
    )]
    pub fn rotate_session(&self, session_id: String, options: Option<Value>) -> Result<Json, Code> {
        let o: FingerprintOptions = req_or_default(options, "options")?;
        ans(self
            .core()?
            .rotate_session(&session_id, o.fingerprint.as_deref()))
    }

    /// Ends every live session of `owner` but `exceptSessionId`; returns how many.
    #[napi(
        catch_unwind,
        ts_args_type = "owner: string, options?: { reason?: string; exceptSessionId?: string }"
    )]
    pub fn end_sessions(&self, owner: String, options: Option<Value>) -> Result<i64, Code> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default, deny_unknown_fields)]
        struct O {
            reason: Option<String>,
            except_session_id: Option<String>,
        }
        let o: O = req_or_default(options, "options")?;
        let n = self
            .core()?
            .end_sessions(&owner, o.reason.as_deref(), o.except_session_id.as_deref())
            .map_err(err)?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// One page of sessions, oldest first.
    #[napi(
        catch_unwind,
        ts_args_type = "filter?: ListSessionsOptions",
        ts_return_type = "Page<Session>"
    )]
    pub fn list_sessions(&self, filter: Option<Value>) -> Result<Json, Code> {
        let f: irontoken::SessionFilter = req_or_default(filter, "filter")?;
        ans(self.core()?.list_sessions(&f))
    }

    /// Marks live sessions past their expiry as expired; returns how many.
    #[napi(catch_unwind)]
    pub fn cleanup_expired_sessions(&self) -> Result<i64, Code> {
        Ok(self.core()?.cleanup_expired_sessions().map_err(err)? as i64)
    }

    /// Deletes sessions that ended at least `olderThanSeconds` ago; returns how many.
    #[napi(catch_unwind)]
    pub fn purge_sessions(&self, older_than_seconds: f64) -> Result<i64, Code> {
        let s = int(Some(older_than_seconds), "olderThanSeconds")?.unwrap_or(0);
        Ok(self.core()?.purge_sessions(s).map_err(err)? as i64)
    }

    /// Records usage (buffered); the same `requestId` twice counts once.
    #[napi(
        catch_unwind,
        ts_args_type = "report: UsageReport",
        ts_return_type = "Recorded"
    )]
    pub fn record_usage(&self, report: Value) -> Result<Json, Code> {
        let r: irontoken::UsageReport = req(report, "report")?;
        ans(self.core()?.record_usage(&r))
    }

    /// `recordUsage` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "report: UsageReport",
        ts_return_type = "Promise<Recorded>"
    )]
    pub fn record_usage_async(&self, report: Value) -> Result<AsyncTask<Job<Json>>, Code> {
        let r: irontoken::UsageReport = req(report, "report")?;
        let tm = self.core()?;
        Ok(Job::new(move || json_ans(tm.record_usage(&r))))
    }

    /// Usage totals, grouped by any of "key", "owner", "model", "session", "agent", "day".
    #[napi(
        catch_unwind,
        ts_args_type = "query?: UsageQuery",
        ts_return_type = "UsageTotals[]"
    )]
    pub fn usage_summary(&self, query: Option<Value>) -> Result<Json, Code> {
        let q: irontoken::UsageQuery = req_or_default(query, "query")?;
        let rows = self.core()?.usage_summary(&q).map_err(err)?;
        json_text(&rows.iter().map(totals_value).collect::<Vec<_>>()).map_err(err)
    }

    /// Keys by state and owner, use over the last `windowSeconds` (default a
    /// day), the `top` (default 10) owners, keys and quotas.
    #[napi(
        catch_unwind,
        ts_args_type = "options?: { windowSeconds?: number; top?: number }",
        ts_return_type = "Stats"
    )]
    pub fn stats(&self, options: Option<StatsOptions>) -> Result<Json, Code> {
        let o = options.unwrap_or_default();
        let window = int(o.window_seconds, "windowSeconds")?.unwrap_or(86_400);
        let top = uint::<u32>(o.top, "top")?.unwrap_or(10);
        let s = self.core()?.stats(window, top).map_err(err)?;
        let mut v = camel_value(&s).map_err(err)?;
        // Usage totals as usageSummary gives them (exact past 2^53).
        v["usage"] = totals_value(&s.usage);
        v["topKeys"] = Value::Array(s.top_keys.iter().map(totals_value).collect());
        json_text(&v).map_err(err)
    }

    /// One page of raw usage records, oldest first.
    #[napi(
        catch_unwind,
        ts_args_type = "query?: UsageQuery",
        ts_return_type = "Page<UsageRecord>"
    )]
    pub fn export_usage(&self, query: Option<Value>) -> Result<Json, Code> {
        let q: irontoken::UsageQuery = req_or_default(query, "query")?;
        ans(self.core()?.export_usage(&q))
    }

    /// Creates or changes a quota.
    #[napi(
        catch_unwind,
        ts_args_type = "spec: QuotaSpec",
        ts_return_type = "Quota"
    )]
    pub fn set_quota(&self, spec: Value) -> Result<Json, Code> {
        let s: irontoken::QuotaSpec = req(spec, "spec")?;
        ans(self.core()?.set_quota(&s))
    }

    /// Removes a quota.
    #[napi(
        catch_unwind,
        ts_args_type = "selector: QuotaSelector & { actor?: string }"
    )]
    pub fn delete_quota(&self, selector: Value) -> Result<(), Code> {
        let s: irontoken::QuotaSelector = req(selector, "selector")?;
        self.core()?
            .delete_quota(s.scope, &s.subject, s.metric, s.period, s.actor.as_deref())
            .map_err(err)
    }

    /// The quotas of a key (default) or owner as they stand now.
    #[napi(
        catch_unwind,
        ts_args_type = "subject: string, options?: { scope?: QuotaScope }",
        ts_return_type = "Quota[]"
    )]
    pub fn list_quotas(&self, subject: String, options: Option<Value>) -> Result<Json, Code> {
        let o: ScopeOptions = req_or_default(options, "options")?;
        ans(self.core()?.list_quotas(o.scope, &subject))
    }

    /// Adds `amount` to a credit balance (period "none").
    #[napi(
        catch_unwind,
        ts_args_type = "subject: string, amount: number, options: { metric: QuotaMetric; scope?: QuotaScope }",
        ts_return_type = "Quota"
    )]
    pub fn add_credits(&self, subject: String, amount: f64, options: Value) -> Result<Json, Code> {
        let o: CreditOptions = req(options, "options")?;
        let amount = u64::try_from(int(Some(amount), "amount")?.unwrap_or(0))
            .map_err(|_| invalid("amount must be positive"))?;
        ans(self
            .core()?
            .add_credits(o.scope, &subject, o.metric, amount))
    }

    /// Checks and consumes from every quota of the key and its owner, all or nothing.
    #[napi(
        catch_unwind,
        ts_args_type = "keyId: string, amounts: Amounts",
        ts_return_type = "QuotaDecision"
    )]
    pub fn consume_quota(&self, key_id: String, amounts: Value) -> Result<Json, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        ans(self.core()?.consume_quota(&key_id, &a))
    }

    /// `consumeQuota` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "keyId: string, amounts: Amounts",
        ts_return_type = "Promise<QuotaDecision>"
    )]
    pub fn consume_quota_async(
        &self,
        key_id: String,
        amounts: Value,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        let tm = self.core()?;
        Ok(Job::new(move || json_ans(tm.consume_quota(&key_id, &a))))
    }

    /// Answers what `consumeQuota` would, without consuming.
    #[napi(
        catch_unwind,
        ts_args_type = "keyId: string, amounts: Amounts",
        ts_return_type = "QuotaDecision"
    )]
    pub fn peek_quota(&self, key_id: String, amounts: Value) -> Result<Json, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        ans(self.core()?.peek_quota(&key_id, &a))
    }

    /// Holds an estimate for `ttlSeconds` (default 300).
    #[napi(
        catch_unwind,
        ts_args_type = "keyId: string, amounts: Amounts, options?: { ttlSeconds?: number }",
        ts_return_type = "Reserved"
    )]
    pub fn reserve_quota(
        &self,
        key_id: String,
        amounts: Value,
        options: Option<Value>,
    ) -> Result<Json, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        let o: TtlOptions = req_or_default(options, "options")?;
        ans(self.core()?.reserve_quota(&key_id, &a, o.ttl_seconds))
    }

    /// Charges the actual amounts of a reserved call (in full) and ends the hold.
    #[napi(
        catch_unwind,
        ts_args_type = "reservationId: string, amounts: Amounts",
        ts_return_type = "QuotaDecision"
    )]
    pub fn settle_reservation(&self, reservation_id: String, amounts: Value) -> Result<Json, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        ans(self.core()?.settle_reservation(&reservation_id, &a))
    }

    /// Gives a hold back without charging.
    #[napi(catch_unwind, ts_return_type = "QuotaDecision")]
    pub fn release_reservation(&self, reservation_id: String) -> Result<Json, Code> {
        ans(self.core()?.release_reservation(&reservation_id))
    }

    /// Releases every hold past its TTL; returns how many.
    #[napi(catch_unwind)]
    pub fn expire_reservations(&self) -> Result<i64, Code> {
        Ok(self.core()?.expire_reservations().map_err(err)? as i64)
    }

    /// Creates a budget agents can lease from.
    #[napi(
        catch_unwind,
        ts_args_type = "options: { owner: string; limitMicros: number; name?: string; actor?: string }",
        ts_return_type = "Budget"
    )]
    pub fn create_budget(&self, options: Value) -> Result<Json, Code> {
        let b: irontoken::NewBudget = req(options, "options")?;
        ans(self.core()?.create_budget(&b))
    }

    /// The budget `budgetId` (spent, leased, available).
    #[napi(catch_unwind, ts_return_type = "Budget")]
    pub fn get_budget(&self, budget_id: String) -> Result<Json, Code> {
        ans(self.core()?.get_budget(&budget_id))
    }

    /// Issues the agent's token (revoking its previous one).
    #[napi(
        catch_unwind,
        ts_args_type = "options: AgentTokenOptions",
        ts_return_type = "AgentToken"
    )]
    pub fn issue_agent_token(&self, options: Value) -> Result<Json, Code> {
        let r: irontoken::AgentTokenRequest = req(options, "options")?;
        ans(self.core()?.issue_agent_token(&r))
    }

    /// Verifies an agent token (signature, expiry, still the agent's live token).
    #[napi(catch_unwind, ts_return_type = "AgentClaims")]
    pub fn verify_agent_token(&self, token: String) -> Result<Json, Code> {
        ans(self.core()?.verify_agent_token(&token))
    }

    /// Revokes the agent's live token and its leases; returns the token's jti.
    #[napi(catch_unwind)]
    pub fn revoke_agent_token(
        &self,
        agent_id: String,
        options: Option<ActorOptions>,
    ) -> Result<String, Code> {
        let actor = options.and_then(|o| o.actor);
        self.core()?
            .revoke_agent_token(&agent_id, actor.as_deref())
            .map_err(err)
    }

    /// Takes a lease of `amountMicros` from the agent token's budget.
    #[napi(
        catch_unwind,
        ts_args_type = "agentToken: string, amountMicros: number, options?: { ttlSeconds?: number }",
        ts_return_type = "Lease"
    )]
    pub fn acquire_lease(
        &self,
        agent_token: String,
        amount_micros: f64,
        options: Option<Value>,
    ) -> Result<Json, Code> {
        let o: TtlOptions = req_or_default(options, "options")?;
        let amount = micros(amount_micros)?;
        ans(self
            .core()?
            .acquire_lease(&agent_token, amount, o.ttl_seconds))
    }

    /// The lease `leaseId`.
    #[napi(catch_unwind, ts_return_type = "Lease")]
    pub fn get_lease(&self, lease_id: String) -> Result<Json, Code> {
        ans(self.core()?.get_lease(&lease_id))
    }

    /// Makes `amountMicros` more available on a lease and renews it.
    #[napi(
        catch_unwind,
        ts_args_type = "leaseId: string, amountMicros: number, options?: { ttlSeconds?: number }",
        ts_return_type = "Lease"
    )]
    pub fn refresh_lease(
        &self,
        lease_id: String,
        amount_micros: f64,
        options: Option<Value>,
    ) -> Result<Json, Code> {
        let o: TtlOptions = req_or_default(options, "options")?;
        let amount = micros(amount_micros)?;
        ans(self.core()?.refresh_lease(&lease_id, amount, o.ttl_seconds))
    }

    /// Ends a lease; its unspent part returns to the budget.
    #[napi(catch_unwind, ts_return_type = "Lease")]
    pub fn release_lease(&self, lease_id: String) -> Result<Json, Code> {
        ans(self.core()?.release_lease(&lease_id))
    }

    /// Reports usage spent on a lease (`requestId` required; retries count once).
    #[napi(
        catch_unwind,
        ts_args_type = "leaseId: string, report: UsageReport",
        ts_return_type = "Lease"
    )]
    pub fn report_lease_usage(&self, lease_id: String, report: Value) -> Result<Json, Code> {
        let r: irontoken::UsageReport = req(report, "report")?;
        ans(self.core()?.report_lease_usage(&lease_id, &r))
    }

    /// `touchSession` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<Session>")]
    pub fn touch_session_async(&self, session_id: String) -> Result<AsyncTask<Job<Json>>, Code> {
        let tm = self.core()?;
        Ok(Job::new(move || json_ans(tm.touch_session(&session_id))))
    }

    /// `reserveQuota` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "keyId: string, amounts: Amounts, options?: { ttlSeconds?: number }",
        ts_return_type = "Promise<Reserved>"
    )]
    pub fn reserve_quota_async(
        &self,
        key_id: String,
        amounts: Value,
        options: Option<Value>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        let o: TtlOptions = req_or_default(options, "options")?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.reserve_quota(&key_id, &a, o.ttl_seconds))
        }))
    }

    /// `settleReservation` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "reservationId: string, amounts: Amounts",
        ts_return_type = "Promise<QuotaDecision>"
    )]
    pub fn settle_reservation_async(
        &self,
        reservation_id: String,
        amounts: Value,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let a: irontoken::Amounts = req(amounts, "amounts")?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.settle_reservation(&reservation_id, &a))
        }))
    }

    /// `acquireLease` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "agentToken: string, amountMicros: number, options?: { ttlSeconds?: number }",
        ts_return_type = "Promise<Lease>"
    )]
    pub fn acquire_lease_async(
        &self,
        agent_token: String,
        amount_micros: f64,
        options: Option<Value>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let o: TtlOptions = req_or_default(options, "options")?;
        let amount = micros(amount_micros)?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.acquire_lease(&agent_token, amount, o.ttl_seconds))
        }))
    }

    /// `refreshLease` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "leaseId: string, amountMicros: number, options?: { ttlSeconds?: number }",
        ts_return_type = "Promise<Lease>"
    )]
    pub fn refresh_lease_async(
        &self,
        lease_id: String,
        amount_micros: f64,
        options: Option<Value>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let o: TtlOptions = req_or_default(options, "options")?;
        let amount = micros(amount_micros)?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.refresh_lease(&lease_id, amount, o.ttl_seconds))
        }))
    }

    /// `reportLeaseUsage` on the libuv pool.
    #[napi(
        catch_unwind,
        ts_args_type = "leaseId: string, report: UsageReport",
        ts_return_type = "Promise<Lease>"
    )]
    pub fn report_lease_usage_async(
        &self,
        lease_id: String,
        report: Value,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let r: irontoken::UsageReport = req(report, "report")?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            json_ans(tm.report_lease_usage(&lease_id, &r))
        }))
    }
}

/// One summary row for JS: the sums are added in 128 bits; one past 2^53 − 1
/// is sent as its decimal text, which index.js turns into a BigInt (a JSON
/// number would reach JS rounded).
/// Options of `stats`.
#[napi(object)]
#[derive(Default)]
pub struct StatsOptions {
    /// The usage window in seconds (default 86400).
    pub window_seconds: Option<f64>,
    /// How many owners, keys and quotas (default 10).
    pub top: Option<f64>,
}

fn totals_value(t: &irontoken::UsageTotals) -> Value {
    let mut m = serde_json::Map::new();
    for (name, v) in [
        ("keyId", &t.key_id),
        ("owner", &t.owner),
        ("model", &t.model),
        ("sessionId", &t.session_id),
        ("agentId", &t.agent_id),
        ("day", &t.day),
        ("hour", &t.hour),
    ] {
        if let Some(v) = v {
            m.insert(name.into(), Value::String(v.clone()));
        }
    }
    const SAFE: u128 = (1 << 53) - 1;
    for (name, n) in [
        ("records", u128::from(t.records)),
        ("requests", t.requests),
        ("promptTokens", t.prompt_tokens),
        ("completionTokens", t.completion_tokens),
        ("cacheReadTokens", t.cache_read_tokens),
        ("cacheWriteTokens", t.cache_write_tokens),
        ("totalTokens", t.total_tokens),
        ("costMicros", t.cost_micros),
    ] {
        let v = if n <= SAFE {
            Value::from(n as u64)
        } else {
            Value::String(n.to_string())
        };
        m.insert(name.into(), v);
    }
    Value::Object(m)
}

/// Options naming a session's fingerprint.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct FingerprintOptions {
    fingerprint: Option<String>,
}

/// Checks an alert webhook's `Irontoken-Signature` header against the raw
/// `body` and `secret`: its HMAC-SHA256, and its time within
/// `toleranceSeconds` (default 300) of `now` (Unix seconds; default the
/// system clock). Throws INVALID_ARGUMENT for a forged, altered, stale or
/// malformed one.
#[napi(
    catch_unwind,
    ts_args_type = "secret: string | Uint8Array, header: string, body: string | Uint8Array, options?: { now?: number; toleranceSeconds?: number }"
)]
pub fn verify_webhook_signature(
    secret: Either<String, Buffer>,
    header: String,
    body: Either<String, Buffer>,
    options: Option<WebhookCheckOptions>,
) -> Result<(), Code> {
    let bytes = |v: &Either<String, Buffer>| -> Vec<u8> {
        match v {
            Either::A(t) => t.as_bytes().to_vec(),
            Either::B(b) => b.to_vec(),
        }
    };
    let o = options.unwrap_or(WebhookCheckOptions {
        now: None,
        tolerance_seconds: None,
    });
    let now = int(o.now, "now")?.unwrap_or_else(|| irontoken::SystemClock::now_ms() / 1000);
    let tolerance = uint::<u64>(o.tolerance_seconds, "toleranceSeconds")?.unwrap_or(300);
    irontoken::alerts::verify_signature(
        &bytes(&secret),
        &header,
        &bytes(&body),
        now,
        std::time::Duration::from_secs(tolerance),
    )
    .map_err(err)
}

/// Options of `verifyWebhookSignature`.
#[napi(object)]
pub struct WebhookCheckOptions {
    /// The receiver's time, Unix seconds (default: the system clock).
    pub now: Option<f64>,
    /// The most the signature's time may differ from `now` (default 300).
    pub tolerance_seconds: Option<f64>,
}
