//! Rate-limit state in Redis: every process and host that names the same
//! server shares one set of buckets. One Lua script per check: all named
//! limits of a key are read, decided and written together (all-or-nothing)
//! in one round trip, on the server's clock (`TIME`), and each bucket's key
//! expires when the bucket is full again.

use crate::error::{Error, ErrorKind, Result};
use crate::ratelimit::{Limit, Unit, Verdict, settle_shift_us};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::time::Duration;

/// The start of every script: effects replicated rather than the script
/// (it reads the clock), and `now` in µs: ARGV[1], or the server's clock
/// (`TIME`) when ARGV[1] is "" (a time is given only by the shared-vector
/// tests).
const CLOCK: &str = r#"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"#;

/// The GCRA of `ratelimit::gcra`, in Lua, after [`CLOCK`]. KEYS: one per
/// limit. ARGV[2]: "1" to count the request; then per limit its emission
/// interval, capacity (µs) and the units this request counts (1 for a
/// limit of requests, the cost for one of tokens; at least one unit must
/// be free). Returns {allowed, retry_after_ms, remaining_1, reset_ms_1, ...}.
const SCRIPT: &str = r#"
local consume = ARGV[2] == '1'
local n = #KEYS
local tat, new, clamped, interval, capacity = {}, {}, {}, {}, {}
local wait = 0
for i = 1, n do
  interval[i] = tonumber(ARGV[3 * i])
  capacity[i] = tonumber(ARGV[3 * i + 1])
  local units = tonumber(ARGV[3 * i + 2])
  local stored = tonumber(redis.call('GET', KEYS[i]) or now)
  local ahead = math.max(stored, now)
  tat[i] = math.min(ahead, now + capacity[i])
  clamped[i] = tat[i] < ahead
  new[i] = tat[i] + interval[i] * units
  wait = math.max(wait, tat[i] + interval[i] * math.max(units, 1) - capacity[i] - now)
end
local allowed = wait == 0
local out = {allowed and 1 or 0, math.ceil(wait / 1000)}
for i = 1, n do
  local keep = nil
  if consume and allowed then keep = new[i] elseif consume and clamped[i] then keep = tat[i] end
  if keep then
    redis.call('SET', KEYS[i], string.format('%d', keep), 'PX', math.max(1, math.ceil((keep - now) / 1000)))
  end
  local after = allowed and new[i] or tat[i]
  out[#out + 1] = math.floor(math.max(now + capacity[i] - after, 0) / interval[i])
  out[#out + 1] = math.ceil(math.max(after - now, 0) / 1000)
end
return out
"#;

/// A settlement (`ratelimit::settled`), in Lua, after [`CLOCK`]. KEYS: the
/// tokens limits' buckets. ARGV[1]: the clock; then per bucket
/// its capacity and the shift (µs, within ± the capacity).
const SETTLE: &str = r#"
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[2 * i])
  local shift = tonumber(ARGV[2 * i + 1])
  local stored = tonumber(redis.call('GET', KEYS[i]) or now)
  local ahead = math.min(math.max(stored, now), now + capacity)
  local t = math.min(math.max(ahead + shift, now), now + capacity)
  if t > now then
    redis.call('SET', KEYS[i], string.format('%d', t), 'PX', math.max(1, math.ceil((t - now) / 1000)))
  else
    redis.call('DEL', KEYS[i])
  end
end
return 1
"#;

/// Most idle connections kept per limiter.
const MAX_IDLE: usize = 8;

/// Rate limits decided by a Redis server (see the module docs).
pub struct RedisLimiter {
    client: redis::Client,
    /// Idle connections, and the fork generation they were opened in: a
    /// child process never writes to a socket it shares with its parent.
    idle: Mutex<(u64, Vec<redis::Connection>)>,
    script: redis::Script,
    settle: redis::Script,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Time left until `deadline`, or the timeout error.
fn left(deadline: std::time::Instant) -> Result<Duration> {
    let t = deadline.saturating_duration_since(std::time::Instant::now());
    if t.is_zero() {
        return Err(storage(
            "timed out",
            "rate_limit_timeout_ms bounds the whole call",
        ));
    }
    Ok(t)
}

/// Sets how long each read and write of `c` may wait.
fn socket_timeouts(c: &redis::Connection, t: Duration) -> Result<()> {
    c.set_read_timeout(Some(t))
        .and_then(|_| c.set_write_timeout(Some(t)))
        .map_err(|e| storage("unreachable", e))
}

/// A Redis failure as a `STORAGE` error naming the server's address, never
/// its password.
fn storage(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!("rate-limit store (Redis) {what}: {e}"),
    )
}

impl RedisLimiter {
    /// A limiter on the server at `url` (`redis://[:password@]host[:port][/db]`;
    /// `?key_prefix=...` sets the prefix of its keys, default `itk:rl:`).
    /// Connects lazily; every command gives up after `timeout`.
    pub fn open(url: &str, timeout: Duration) -> Result<RedisLimiter> {
        let (base, prefix) = match url.split_once('?') {
            None => (url.to_string(), "itk:rl:".to_string()),
            Some((base, query)) => {
                let mut prefix = "itk:rl:".to_string();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    match pair.split_once('=') {
                        Some(("key_prefix", v)) if !v.is_empty() && v.len() <= 64 => {
                            prefix = v.to_string()
                        }
                        _ => {
                            return Err(Error::invalid(
                                "the Redis URL takes one query parameter: key_prefix (1-64 characters)",
                            ));
                        }
                    }
                }
                (base.to_string(), prefix)
            }
        };
        if !(base.starts_with("redis://") || base.starts_with("unix://")) {
            return Err(Error::invalid(
                "rate_limit_store must be \"store\", \"local\" or a redis:// URL",
            ));
        }
        let info = redis::IntoConnectionInfo::into_connection_info(base.as_str())
            .map_err(|e| Error::invalid(format!("invalid Redis URL: {}", e.category())))?;
        // No CLIENT SETINFO at connect: the set-up ignores their errors, so
        // against a silent server each waits out the whole timeout (two
        // timeouts before the call could even begin).
        let settings = info.redis_settings().clone().set_skip_set_lib_name();
        let client = redis::Client::open(info.set_redis_settings(settings))
            .map_err(|e| Error::invalid(format!("invalid Redis URL: {}", e.category())))?;
        if timeout.is_zero() {
            return Err(Error::invalid("the Redis timeout must be positive"));
        }
        crate::fork::watch_forks();
        Ok(RedisLimiter {
            client,
            idle: Mutex::new((crate::fork::generation(), Vec::new())),
            script: redis::Script::new(&format!("{CLOCK}{SCRIPT}")),
            settle: redis::Script::new(&format!("{CLOCK}{SETTLE}")),
            prefix,
            timeout,
        })
    }

    /// A pooled connection, or a new one connected before `deadline`
    /// (true: new). A pooled one waits at most `timeout` per read or write,
    /// set once when it was made; a new one gets what is left of this
    /// call's `deadline`, and `timeout` again before it is pooled.
    fn connection(&self, deadline: std::time::Instant) -> Result<(redis::Connection, bool)> {
        {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let now = crate::fork::generation();
            if idle.0 != now {
                // Inherited through fork(): the parent's; leaked, not closed.
                std::mem::forget(std::mem::take(&mut idle.1));
                idle.0 = now;
            }
            if let Some(c) = idle.1.pop() {
                return Ok((c, false));
            }
        }
        let c = self
            .client
            .get_connection_with_timeout(left(deadline)?)
            .map_err(|e| storage("unreachable", e))?;
        socket_timeouts(&c, left(deadline)?)?;
        Ok((c, true))
    }

    /// Runs `f` on a pooled or new connection. `timeout` bounds the whole
    /// call: a new connection's set-up and the command share it; a pooled
    /// one's command gets it per socket wait (one write, one read).
    fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let deadline = std::time::Instant::now() + self.timeout;
        let (mut con, new) = self.connection(deadline)?;
        let answer = match f(&mut con) {
            Ok(a) => a,
            Err(e) => {
                // The server may have restarted: every idle connection is
                // suspect, not only this one.
                self.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .1
                    .clear();
                return Err(storage("failed", e));
            }
        };
        // A connection that answered is reused; one that failed is dropped.
        let pooled = !new || socket_timeouts(&con, self.timeout).is_ok();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if pooled && idle.1.len() < MAX_IDLE && idle.0 == crate::fork::generation() {
            idle.1.push(con);
        }
        Ok(answer)
    }

    /// Records a one-time id (its SHA-256) until `expires_at` (Unix seconds,
    /// the key expires then on the server); false if it was recorded already.
    pub fn claim_jti(&self, jti_hash: &[u8; 32], expires_at: i64) -> Result<bool> {
        let mut key = String::with_capacity(self.prefix.len() + 68);
        key.push_str(&self.prefix);
        key.push_str("jti:");
        for b in jti_hash {
            key.push_str(&format!("{b:02x}"));
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key).arg(1).arg("NX").arg("EXAT").arg(expires_at);
        let set: Option<String> = self.with_connection(|con| cmd.query(con))?;
        Ok(set.is_some())
    }

    /// The Redis key of `key`'s bucket `name`. The key's hash, in braces,
    /// keeps all buckets of a key in one Redis Cluster slot.
    fn bucket(&self, key: &str, name: &str) -> String {
        let h = Sha256::digest(key.as_bytes());
        let mut out = String::with_capacity(self.prefix.len() + 36 + name.len());
        out.push_str(&self.prefix);
        out.push('{');
        for b in &h[..16] {
            out.push_str(&format!("{b:02x}"));
        }
        out.push_str("}:");
        out.push_str(name);
        out
    }

    /// Decides one request of `key` over `limits` (validated) on the server's
    /// clock; like `RateLimiter::decide_into`.
    pub fn decide_into(
        &self,
        key: &str,
        limits: &[Limit],
        consume: bool,
        cost: u64,
        out: &mut Vec<Verdict>,
    ) -> Result<(bool, u64)> {
        self.decide_at(key, limits, None, consume, cost, out)
    }

    /// Settles the tokens limits of `key` (see `RateLimiter::settle`) on
    /// the server's clock, in one round trip.
    pub fn settle(&self, key: &str, limits: &[Limit], estimated: u64, actual: u64) -> Result<()> {
        let mut call = self.settle.prepare_invoke();
        call.arg("");
        let mut any = false;
        for l in limits.iter().filter(|l| l.unit == Unit::Tokens) {
            l.validate()?;
            any = true;
            call.key(self.bucket(key, &l.name));
            call.arg(l.interval_us().saturating_mul(l.burst as i64))
                .arg(settle_shift_us(l, estimated, actual));
        }
        if any {
            let _: i64 = self.with_connection(|con| call.invoke(con))?;
        }
        Ok(())
    }

    /// [`RedisLimiter::decide_into`] at `now_ms` instead of the server's
    /// clock: for replaying the shared vectors only.
    #[doc(hidden)]
    pub fn decide_at(
        &self,
        key: &str,
        limits: &[Limit],
        now_ms: Option<i64>,
        consume: bool,
        cost: u64,
        out: &mut Vec<Verdict>,
    ) -> Result<(bool, u64)> {
        for l in limits {
            l.validate()?;
        }
        crate::ratelimit::validate_cost(limits, cost)?;
        let mut call = self.script.prepare_invoke();
        call.arg(now_ms.map_or(String::new(), |t| t.saturating_mul(1000).to_string()));
        call.arg(if consume { "1" } else { "0" });
        for l in limits {
            call.key(self.bucket(key, &l.name));
            let interval = l.interval_us();
            call.arg(interval)
                .arg(interval.saturating_mul(l.burst as i64))
                .arg(l.units(cost));
        }
        let answer: Vec<i64> = self.with_connection(|con| call.invoke(con))?;
        if answer.len() != 2 + 2 * limits.len() {
            return Err(storage("answered unexpectedly", answer.len()));
        }
        let allowed = answer[0] == 1;
        let retry_after_ms = answer[1].max(0) as u64;
        out.clear();
        out.extend(answer[2..].chunks(2).map(|p| Verdict {
            allowed,
            remaining: p[0].max(0) as u64,
            retry_after_ms,
            reset_ms: p[1].max(0) as u64,
            degraded: false,
        }));
        Ok((allowed, retry_after_ms))
    }
}
