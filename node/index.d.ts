// Type definitions of the irontoken Node.js binding.

/** An API key as text or as the raw bytes of a header (not UTF-8: refused as MALFORMED). */
export type ApiKeyInput = string | Uint8Array

/** State of a key when the record was read. */
export type KeyStatus = 'active' | 'disabled' | 'revoked' | 'expired'

/** Why a verification answered as it did. */
export type VerifyReason =
  | 'VALID'
  | 'MALFORMED'
  | 'NOT_FOUND'
  | 'DISABLED'
  | 'REVOKED'
  | 'EXPIRED'
  | 'INSUFFICIENT_SCOPE'
  | 'RATE_LIMITED'
  | 'USAGE_EXCEEDED'

/** The stable code on every error thrown by irontoken (`err.code`). */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'KEY_NOT_FOUND'
  | 'KEY_MALFORMED'
  | 'KEY_DISABLED'
  | 'KEY_REVOKED'
  | 'KEY_EXPIRED'
  | 'CONFLICT'
  | 'STORAGE'
  | 'BUSY'
  | 'SCHEMA_TOO_NEW'
  | 'INTERNAL'
  | 'JWT_MALFORMED'
  | 'JWT_BAD_SIGNATURE'
  | 'JWT_EXPIRED'
  | 'JWT_NOT_YET_VALID'
  | 'JWT_ALG_NOT_ALLOWED'
  | 'JWT_INVALID_AUDIENCE'
  | 'JWT_INVALID_ISSUER'
  | 'JWT_INVALID_SUBJECT'
  | 'JWT_MISSING_CLAIM'
  | 'JWT_INVALID_CLAIM'
  | 'JWT_KEY_NOT_FOUND'
  | 'JWT_UNSUPPORTED_HEADER'
  | 'INVALID_KEY_MATERIAL'
  | 'MASTER_KEY_REQUIRED'
  | 'NO_ACTIVE_SIGNING_KEY'
  | 'SESSION_NOT_FOUND'
  | 'SESSION_EXPIRED'
  | 'SESSION_ENDED'
  | 'RATE_LIMITED'
  | 'USAGE_EXCEEDED'
  | 'NOT_FOUND'
  | 'AGENT_TOKEN_REVOKED'
  | 'JWKS_FETCH_FAILED'
  | 'DATABASE_CORRUPT'
  | 'DATABASE_NOT_FOUND'
  | 'MASTER_KEY_MISMATCH'

/** An Error thrown by irontoken. */
export interface IronTokenError extends Error {
  code: ErrorCode
}

/** The stored record of an API key (never the key itself). Times are Unix seconds. */
export interface KeyRecord {
  id: string
  prefix: string
  displayPrefix: string
  owner: string
  name: string
  description: string
  scopes: string[]
  metadata: Record<string, unknown>
  createdAt: number
  updatedAt: number
  expiresAt?: number
  lastUsedAt?: number
  usageCount: number
  enabled: boolean
  revokedAt?: number
  revokedReason?: string
  version: number
  rotatedFrom?: string
  rotatedTo?: string
  status: KeyStatus
  /** Rate limits applied by `verifyKeyWith`. */
  rateLimits: RateLimitSpec[]
  /** Seconds after creation at which the key is due for rotation (absent: the manager's default). */
  rotationPeriod?: number
}

/** One named rate limit of a key: `count` per `periodMs`, bursts up to `burst`. */
export interface RateLimitSpec {
  name: string
  count: number
  periodMs: number
  burst: number
}

/** A rate limit as given to createKey/updateKey: `burst` defaults to `count`. */
export interface RateLimitInput {
  name: string
  count: number
  periodMs: number
  /** Largest burst (default: count). */
  burst?: number
}

export type SessionStatus = 'active' | 'paused' | 'ended' | 'expired'
export type QuotaMetric = 'requests' | 'tokens' | 'cost'
export type QuotaPeriod = 'day' | 'month' | 'none'
export type QuotaScope = 'key' | 'owner'

/** A session; times are Unix seconds, `status` computed when read. */
export interface Session {
  id: string
  owner: string
  keyId: string | null
  sessionType: string
  status: SessionStatus
  metadata: Record<string, unknown>
  createdAt: number
  updatedAt: number
  lastSeenAt: number
  expiresAt: number | null
  idleTimeout: number | null
  /** When it expires unless touched: min(absolute, last touch + idle timeout). */
  expiresNextAt: number | null
  endedAt: number | null
  endReason: string | null
}

export interface CreateSessionOptions {
  owner: string
  keyId?: string
  /** Default 'runtime'. */
  sessionType?: string
  metadata?: Record<string, unknown>
  ttlSeconds?: number
  idleTimeoutSeconds?: number
}

export interface ListSessionsOptions {
  owner?: string
  sessionType?: string
  status?: SessionStatus
  keyId?: string
  limit?: number
  cursor?: string
}

/** One usage report; money is an integer of micro-units. */
export interface UsageReport {
  /** Give one: a second report with the same id counts once. */
  requestId?: string
  keyId?: string
  sessionId?: string
  model?: string
  modelVersion?: string
  promptTokens?: number
  completionTokens?: number
  cacheReadTokens?: number
  cacheWriteTokens?: number
  /** Default 1. */
  requests?: number
  costMicros?: number
  metadata?: Record<string, unknown>
  at?: number
}

export interface Recorded {
  requestId: string
  duplicate: boolean
}

export interface UsageRecord {
  requestId: string
  at: number
  keyId: string | null
  owner: string | null
  sessionId: string | null
  agentId: string | null
  model: string
  modelVersion: string
  promptTokens: number
  completionTokens: number
  cacheReadTokens: number
  cacheWriteTokens: number
  requests: number
  costMicros: number
  metadata: Record<string, unknown>
}

export interface UsageQuery {
  since?: number
  until?: number
  keyId?: string
  owner?: string
  model?: string
  sessionId?: string
  agentId?: string
  /** Summaries: any of 'key', 'owner', 'model', 'session', 'agent', 'day'. */
  groupBy?: Array<'key' | 'owner' | 'model' | 'session' | 'agent' | 'day'>
  /** Exports: page size and cursor. */
  limit?: number
  cursor?: string
}

/** One summary row: the group's keys (when grouped by them), then totals. */
export interface UsageTotals {
  keyId?: string
  owner?: string
  model?: string
  sessionId?: string
  agentId?: string
  day?: string
  /** Sums are added in 128 bits: a Number up to 2^53 - 1, a BigInt past it. */
  records: number | bigint
  requests: number | bigint
  promptTokens: number | bigint
  completionTokens: number | bigint
  cacheReadTokens: number | bigint
  cacheWriteTokens: number | bigint
  totalTokens: number | bigint
  costMicros: number | bigint
}

/** Keys in each state. */
export interface KeyCounts {
  total: number
  active: number
  disabled: number
  revoked: number
  expired: number
}

/** What `stats()` returns (`irontoken stats`). */
export interface Stats {
  /** When the figures were read (Unix seconds). */
  at: number
  /** Start of the usage window. */
  since: number
  keys: KeyCounts
  /** The owners with the most keys, most first. */
  owners: { owner: string; keys: KeyCounts }[]
  /** Use in the window, all keys together. */
  usage: UsageTotals
  /** The keys with the most requests in the window. */
  topKeys: UsageTotals[]
  /** The quotas most spent in their current window; burn = (used + reserved) / limit. */
  quotas: (Quota & { burn: number })[]
}

export interface QuotaSelector {
  scope?: QuotaScope
  subject: string
  metric: QuotaMetric
  period: QuotaPeriod
}

export interface QuotaSpec extends QuotaSelector {
  limit: number
  /** Balances (period 'none'): raise the remaining balance to this amount... */
  refillAmount?: number
  /** ...at every UTC day or month boundary. */
  refillPeriod?: 'day' | 'month'
  actor?: string
}

export interface Quota {
  scope: QuotaScope
  subject: string
  metric: QuotaMetric
  period: QuotaPeriod
  limit: number
  used: number
  reserved: number
  remaining: number
  windowStart: number
  resetAt: number | null
  refillAmount: number | null
  refillPeriod: 'day' | 'month' | null
}

export interface Amounts {
  requests?: number
  tokens?: number
  costMicros?: number
}

export interface QuotaDecision {
  allowed: boolean
  quotas: Quota[]
  deniedBy: Quota | null
}

export interface Reservation {
  id: string
  keyId: string
  amounts: Required<Amounts>
  status: 'held' | 'settled' | 'released' | 'expired'
  createdAt: number
  expiresAt: number
}

export interface Reserved {
  reservation: Reservation | null
  decision: QuotaDecision
}

export interface RateLimitDecision {
  allowed: boolean
  retryAfterMs: number
  limits: Array<{ name: string; remaining: number; resetMs: number }>
}

/** The answer of `verifyKeyWith`. */
export interface VerifyWithResult {
  valid: boolean
  reason: VerifyReason
  record: KeyRecord | null
  rateLimit: RateLimitDecision | null
  quota: QuotaDecision | null
}

export interface VerifyWithOptions {
  requiredScopes?: string[]
  /** Apply the key's configured rate limits. */
  rateLimit?: boolean
  /** Consume these amounts from the key's (and its owner's) quotas. */
  quota?: Amounts
}

export interface Budget {
  id: string
  owner: string
  name: string
  limitMicros: number
  spentMicros: number
  leasedMicros: number
  availableMicros: number
  createdAt: number
}

export interface AgentTokenOptions {
  agentId: string
  budgetId: string
  permissions?: string[]
  /** `iss`, default 'irontoken'. */
  issuer?: string
  /** Lifetime; absent = no `exp` (long-lived until revoked). */
  ttlSeconds?: number
  actor?: string
}

export interface AgentClaims {
  jti: string
  agentId: string
  budgetId: string
  permissions: string[]
  issuer: string
  issuedAt: number
  expiresAt: number | null
}

export interface AgentToken {
  token: string
  claims: AgentClaims
  /** The jti of the token this one replaced (now revoked). */
  replaced: string | null
}

export interface Lease {
  id: string
  budgetId: string
  agentId: string
  jti: string
  amountMicros: number
  spentMicros: number
  remainingMicros: number
  status: 'active' | 'released' | 'revoked' | 'expired'
  createdAt: number
  expiresAt: number
}

/** An operator signal from `drainEvents`. */
export interface IronTokenEvent {
  kind: 'auth_failure_burst' | 'quota_threshold' | 'usage_spike'
  at: number
  keyId: string | null
  displayPrefix: string | null
  detail: Record<string, unknown>
}

/** The answer of `verifyKey`: a normal result, not an exception. */
export declare class VerifyResult {
  private constructor()
  get valid(): boolean
  get reason(): VerifyReason
  /** The key's record when the key was found (also when refused); built when read. */
  get record(): KeyRecord | null
  toJSON(): { valid: boolean; reason: VerifyReason; record: KeyRecord | null }
}

/** One entry of the audit trail. */
export interface AuditEntry {
  id: number
  at: number
  action: string
  keyId?: string
  displayPrefix?: string
  actor?: string
  outcome: string
  detail?: Record<string, unknown>
}

/** A page of results; pass `nextCursor` as `cursor` for the next page. */
export interface Page<T> {
  items: T[]
  nextCursor?: string
}

/** A managed signing key as listed (never its private material). */
export interface ManagedKey {
  kid: string
  alg: 'RS256' | 'ES256' | 'EdDSA' | 'HS256'
  status: 'active' | 'verify_only' | 'retired'
  createdAt: number
  verifyUntil: number | null
  retiredAt: number | null
}

/** An access token issued for an API key. */
export interface AccessToken {
  token: string
  expiresAt: number
  keyId: string
  owner: string
  scopes: string[]
}

export interface OpenOptions {
  /** 'full' (default: commits survive power loss) or 'normal'. */
  durability?: 'full' | 'normal'
  busyTimeoutMs?: number
  flushIntervalMs?: number
  /**
   * Buffered entries that ask the background writer for an early flush
   * (default 4096, 1 to 16777216; a key's use counter weighs 1/8). At eight
   * times it, verification writes inline so memory stays bounded.
   */
  flushThreshold?: number
  /** Start a manual clock at this Unix time (tests); see `advanceClock`. */
  manualClockStart?: number
  /** Master key of managed signing keys, base64 or hex (>= 32 bytes); default: IRONTOKEN_MASTER_KEY. */
  masterKey?: string
  /** RSA size of generated RS256 signing keys (default 2048). */
  rsaKeyBits?: 2048 | 3072
  /** Create a missing database file (default true); false refuses with DATABASE_NOT_FOUND. */
  create?: boolean
  /** Key records cached by verification (default 50000). */
  keyCacheSize?: number
  /** SQLite page cache per connection, MiB (default 8). */
  pageCacheMib?: number
  /** Memory-mapped part of the database file, MiB (default 0 = off; see docs/guides/storage.md). */
  mmapMib?: number
  /** Where rate-limit state lives: "store" (default: the database, shared by every process), "local" (per process) or a redis:// URL. */
  rateLimitStore?: string
  /** Allow requests when the rate-limit store fails (default false: STORAGE error). */
  rateLimitFailOpen?: boolean
  /** Milliseconds a rate-limit check waits for Redis (default 1000). */
  rateLimitTimeoutMs?: number
  /** PostgreSQL: read key state from the database on every verification instead of the change-notified cache (default false). */
  strict?: boolean
  /** PostgreSQL: milliseconds one call may wait on the server in all — checkout, connect, statements, commit (default 5000); then STORAGE. */
  storageTimeoutMs?: number
  /** PostgreSQL: milliseconds a cached key state is trusted without proof that the change channel is alive (default 1000): a key revoked on any host is refused everywhere within it. */
  maxStalenessMs?: number
  /** PostgreSQL: verify from a stale cached state when the server cannot answer (default false: fail closed with STORAGE). A revoked key may then verify for the whole partition. */
  verifyFailOpen?: boolean
  /** Seconds after which keys without their own rotationPeriod are due (rotateDue). */
  defaultRotationPeriod?: number
}

export interface CreateKeyOptions {
  owner: string
  name?: string
  description?: string
  scopes?: string[]
  metadata?: Record<string, unknown>
  /** Absolute expiry (Unix seconds). */
  expiresAt?: number
  /** Lifetime in seconds from now. */
  expiresIn?: number
  /** Key prefix, default 'itk'. */
  prefix?: string
  /** Rate limits applied by `verifyKeyWith` (unique names, at most 16). */
  rateLimits?: RateLimitInput[]
  /** Seconds after creation at which the key is due for rotation (rotateDue); rotations keep it. */
  rotationPeriod?: number
  actor?: string
}

/**
 * A key brought in from another system: its plaintext (`key`) or the SHA-256
 * of it (`keyHash`: 64 hex or 44 base64 characters), never both. A key not in
 * irontoken's format becomes a legacy key (prefix 'legacy'), verified by hash.
 */
export interface ImportKeyOptions {
  key?: string
  keyHash?: string
  owner: string
  name?: string
  description?: string
  scopes?: string[]
  metadata?: Record<string, unknown>
  /** Absolute expiry (Unix seconds, in the future). */
  expiresAt?: number
  /** Shown in listings instead of the key (at most 32 characters). */
  displayPrefix?: string
  rateLimits?: RateLimitInput[]
  /** The old system's id of the record the key comes from: one irontoken key per old record, ever. */
  legacyId?: string
  actor?: string
}

export interface ListKeysOptions {
  owner?: string
  status?: KeyStatus
  /** Only keys whose display prefix (`itk_AbC1`, as listings and logs show it) starts with this. */
  prefix?: string
  limit?: number
  cursor?: string
}

export interface UpdateKeyOptions {
  name?: string
  description?: string
  scopes?: string[]
  metadata?: Record<string, unknown>
  expiresAt?: number
  clearExpiry?: boolean
  /** Replaces the rate limits ([] removes them). */
  rateLimits?: RateLimitInput[]
  /** Seconds after creation at which the key is due for rotation. */
  rotationPeriod?: number
  clearRotationPeriod?: boolean
  actor?: string
}

export interface ActorOptions {
  actor?: string
}

export interface RevokeOptions {
  reason?: string
  actor?: string
}

export interface RotateKeyOptions {
  /** Seconds the old key keeps verifying; 0 (default) revokes it now. */
  overlapSeconds?: number
  expiresAt?: number
  actor?: string
}

export interface ListAuditOptions {
  keyId?: string
  action?: string
  actor?: string
  outcome?: string
  since?: number
  until?: number
  limit?: number
  cursor?: string
}

/**
 * A key just created or rotated. `key` is the plaintext, available only now.
 *
 * Logging it (`console.log`, `util.inspect`) or `JSON.stringify(created)`
 * shows `itk_xxxx…`, never the key: a created key serialized by accident
 * (a log line, an error report) leaks nothing. To hand the key to its owner,
 * read it explicitly: `res.json({ key: created.key, id: created.record.id })`.
 */
export declare class CreatedKey {
  private constructor()
  /** The plaintext key; logging or JSON-serializing the object hides it. */
  get key(): string
  get record(): KeyRecord
  /** `{ key: 'itk_xxxx…' (redacted), record }`: what JSON.stringify sees. */
  toJSON(): { key: string; record: KeyRecord }
}

/** The entry object, opened on a SQLite path or ':memory:'. Calls are synchronous. */
export declare class TokenManager {
  constructor(path: string, options?: OpenOptions)
  /**
   * Opens the database `IRONTOKEN_DB` names (a SQLite path or a postgresql://
   * URL); `IRONTOKEN_RATE_LIMIT_STORE` and `IRONTOKEN_STORAGE_TIMEOUT_MS` fill
   * those options when `options` leaves them out. INVALID_ARGUMENT when
   * IRONTOKEN_DB is not set.
   */
  static fromEnv(options?: OpenOptions): TokenManager
  /** Counts one request of `key` against `limits`, all-or-nothing, in the manager's rate-limit store; `{ peek: true }` counts nothing. */
  rateLimit(key: string, limits: Limit[], options?: { peek?: boolean }): RateDecision
  /** `rateLimit` off the JS thread (a Redis or database round trip). */
  rateLimitAsync(key: string, limits: Limit[], options?: { peek?: boolean }): Promise<RateDecision>
  createKey(options: CreateKeyOptions): CreatedKey
  /** Creates many keys in one transaction: all or none; at most 100 000 per call. */
  createKeys(requests: CreateKeyOptions[]): CreatedKey[]
  /** Imports a key from another system (CONFLICT if it is here already). */
  importKey(options: ImportKeyOptions): KeyRecord
  /** Imports many keys in one transaction: all or none; the first bad entry's index is in the error. */
  importKeys(keys: ImportKeyOptions[]): KeyRecord[]
  verifyKey(key: ApiKeyInput, requiredScopes?: string[]): VerifyResult
  /**
   * verifyKey if it needs no network round trip (always on SQLite; on
   * PostgreSQL when the key is in this process's notified caches), else null
   * with nothing recorded: then call verifyKey or verifyKeyAsync.
   */
  tryVerifyKey(key: ApiKeyInput, requiredScopes?: string[]): VerifyResult | null
  /** @deprecated Renamed {@link tryVerifyKey} (kept for one release; warns once). */
  verifyKeyNow(key: ApiKeyInput, requiredScopes?: string[]): VerifyResult | null
  getKey(keyId: string): KeyRecord
  listKeys(options?: ListKeysOptions): Page<KeyRecord>
  /** Keys due for rotation now (at least their rotation period old), oldest first (limit default 100, at most 1000). */
  keysDue(limit?: number): KeyRecord[]
  /**
   * Rotates every key due for rotation and returns the new keys — their
   * plaintexts, shown only here, go to the owners. Safe from cron on several
   * hosts at once: each due key is rotated once.
   */
  rotateDue(options?: { overlapSeconds?: number; actor?: string }): CreatedKey[]
  updateKey(keyId: string, options: UpdateKeyOptions): KeyRecord
  disableKey(keyId: string, options?: ActorOptions): KeyRecord
  enableKey(keyId: string, options?: ActorOptions): KeyRecord
  revokeKey(keyId: string, options?: RevokeOptions): KeyRecord
  rotateKey(keyId: string, options?: RotateKeyOptions): CreatedKey
  /** Deletes a key's record; its hash stays as a tombstone that refuses re-import until `liftTombstone`. */
  deleteKey(keyId: string, options?: ActorOptions): void
  /** Lifts a deleted key's tombstone so it may be imported again (audited); false when there was none. */
  liftTombstone(options: { key?: string; keyHash?: string; actor?: string }): boolean
  listAudit(options?: ListAuditOptions): Page<AuditEntry>
  /** Generates a managed signing key and makes it active (needs a master key). */
  createSigningKey(algorithm: 'RS256' | 'ES256' | 'EdDSA' | 'HS256', options?: ActorOptions): ManagedKey
  /** Makes a new key active; the old one verifies for `overlapSeconds` more. */
  rotateSigningKey(options?: { algorithm?: string; overlapSeconds?: number; actor?: string }): ManagedKey
  /**
   * The scheduled rotation (cron on any number of hosts at once): rotates the
   * active key if it is at least `everySeconds` old; the new key, or null.
   * A due key is rotated once however many callers race. NOT_FOUND with no active key.
   */
  rotateSigningKeyIfDue(everySeconds: number, options?: { overlapSeconds?: number; actor?: string }): ManagedKey | null
  retireSigningKey(kid: string, options?: ActorOptions): ManagedKey
  listSigningKeys(): ManagedKey[]
  /** The public JWKS of the keys that verify now (HMAC keys never appear). */
  jwks(): { keys: Record<string, unknown>[] }
  /** Signs claims with the active managed key (iat, exp, jti added when absent). */
  issueJwt(claims: Record<string, unknown>, options?: { ttlSeconds?: number }): string
  /** Verifies a token issued by this manager's keys. */
  verifyJwt(token: string, options: JwtVerifyOptions): VerifiedJwt
  /** Exchanges a valid API key for a short-lived access token. */
  exchangeApiKey(apiKey: ApiKeyInput, options?: { requiredScopes?: string[]; ttlSeconds?: number }): AccessToken
  /** Verifies a key, applies its rate limits and consumes quota, in one call. */
  verifyKeyWith(key: ApiKeyInput, options?: VerifyWithOptions): VerifyWithResult
  /** verifyKeyWith if it needs no write and no round trip (no quota; no shared rate limit to apply), else null. */
  tryVerifyKeyWith(key: ApiKeyInput, options?: VerifyWithOptions): VerifyWithResult | null
  /** @deprecated Renamed {@link tryVerifyKeyWith} (kept for one release; warns once). */
  verifyKeyWithNow(key: ApiKeyInput, options?: VerifyWithOptions): VerifyWithResult | null
  createSession(options: CreateSessionOptions): Session
  getSession(sessionId: string): Session
  /** Slides the idle expiry (never past the absolute one); SESSION_EXPIRED / SESSION_ENDED if not live. */
  touchSession(sessionId: string): Session
  updateSession(sessionId: string, update: { status?: 'active' | 'paused'; metadata?: Record<string, unknown> }): Session
  endSession(sessionId: string, options?: { reason?: string }): Session
  listSessions(filter?: ListSessionsOptions): Page<Session>
  /** Marks live sessions past their expiry as expired; returns how many. */
  cleanupExpiredSessions(): number
  /** Deletes sessions that ended at least `olderThanSeconds` ago; returns how many. */
  purgeSessions(olderThanSeconds: number): number
  /** Records usage (buffered; written with the next flush). */
  recordUsage(report: UsageReport): Recorded
  usageSummary(query?: UsageQuery): UsageTotals[]
  /** Keys by state and owner, use over the last `windowSeconds` (default a day), the `top` (default 10) owners, keys and quotas. */
  stats(options?: { windowSeconds?: number; top?: number }): Stats
  exportUsage(query?: UsageQuery): Page<UsageRecord>
  setQuota(spec: QuotaSpec): Quota
  deleteQuota(selector: QuotaSelector & { actor?: string }): void
  listQuotas(subject: string, options?: { scope?: QuotaScope }): Quota[]
  addCredits(subject: string, amount: number, options: { metric: QuotaMetric; scope?: QuotaScope }): Quota
  /** Checks and consumes from every quota of the key and its owner, all or nothing. */
  consumeQuota(keyId: string, amounts: Amounts): QuotaDecision
  peekQuota(keyId: string, amounts: Amounts): QuotaDecision
  reserveQuota(keyId: string, amounts: Amounts, options?: { ttlSeconds?: number }): Reserved
  settleReservation(reservationId: string, amounts: Amounts): QuotaDecision
  releaseReservation(reservationId: string): QuotaDecision
  expireReservations(): number
  createBudget(options: { owner: string; limitMicros: number; name?: string; actor?: string }): Budget
  getBudget(budgetId: string): Budget
  /** Issues the agent's token, revoking its previous one and that one's leases. */
  issueAgentToken(options: AgentTokenOptions): AgentToken
  verifyAgentToken(token: string): AgentClaims
  revokeAgentToken(agentId: string, options?: ActorOptions): string
  acquireLease(agentToken: string, amountMicros: number, options?: { ttlSeconds?: number }): Lease
  getLease(leaseId: string): Lease
  refreshLease(leaseId: string, amountMicros: number, options?: { ttlSeconds?: number }): Lease
  releaseLease(leaseId: string): Lease
  reportLeaseUsage(leaseId: string, report: UsageReport): Lease
  /** Takes up to `max` (default 100) pending signals, oldest first. */
  drainEvents(max?: number): IronTokenEvent[]
  /** Writes buffered usage counters and failed-verification audit entries now. */
  flush(): void
  /** Counters in the Prometheus text exposition format. */
  metrics(): string
  /** Moves a manual clock; throws INVALID_ARGUMENT on the system clock. */
  advanceClock(seconds: number): number
  now(): number
  /** Flushes and closes; later calls throw INVALID_ARGUMENT. */
  close(): void
  // Off the JS thread (libuv pool): calls that wait for a commit's fsync or
  // a key generation. Rejections carry the same `code` as the sync calls.
  createKeyAsync(options: CreateKeyOptions): Promise<CreatedKey>
  createKeysAsync(requests: CreateKeyOptions[]): Promise<CreatedKey[]>
  importKeysAsync(keys: ImportKeyOptions[]): Promise<KeyRecord[]>
  /** Answered on the calling thread when no network round trip is needed (always on SQLite). */
  verifyKeyAsync(key: ApiKeyInput, requiredScopes?: string[]): Promise<VerifyResult>
  revokeKeyAsync(keyId: string, options?: RevokeOptions): Promise<KeyRecord>
  rotateKeyAsync(keyId: string, options?: RotateKeyOptions): Promise<CreatedKey>
  createSigningKeyAsync(algorithm: 'RS256' | 'ES256' | 'EdDSA' | 'HS256', options?: ActorOptions): Promise<ManagedKey>
  rotateSigningKeyAsync(options?: { algorithm?: string; overlapSeconds?: number; actor?: string }): Promise<ManagedKey>
  flushAsync(): Promise<void>
  verifyKeyWithAsync(key: ApiKeyInput, options?: VerifyWithOptions): Promise<VerifyWithResult>
  recordUsageAsync(report: UsageReport): Promise<Recorded>
  consumeQuotaAsync(keyId: string, amounts: Amounts): Promise<QuotaDecision>
  updateKeyAsync(keyId: string, options: UpdateKeyOptions): Promise<KeyRecord>
  rotateDueAsync(options?: { overlapSeconds?: number; actor?: string }): Promise<CreatedKey[]>
  disableKeyAsync(keyId: string, options?: ActorOptions): Promise<KeyRecord>
  enableKeyAsync(keyId: string, options?: ActorOptions): Promise<KeyRecord>
  deleteKeyAsync(keyId: string, options?: ActorOptions): Promise<void>
  createSessionAsync(options: CreateSessionOptions): Promise<Session>
  endSessionAsync(sessionId: string, options?: { reason?: string }): Promise<Session>
  touchSessionAsync(sessionId: string): Promise<Session>
  reserveQuotaAsync(keyId: string, amounts: Amounts, options?: { ttlSeconds?: number }): Promise<Reserved>
  settleReservationAsync(reservationId: string, amounts: Amounts): Promise<QuotaDecision>
  acquireLeaseAsync(agentToken: string, amountMicros: number, options?: { ttlSeconds?: number }): Promise<Lease>
  refreshLeaseAsync(leaseId: string, amountMicros: number, options?: { ttlSeconds?: number }): Promise<Lease>
  reportLeaseUsageAsync(leaseId: string, report: UsageReport): Promise<Lease>
}

/** True if `key` has the shape and checksum of an irontoken key (no database lookup). */
export declare function isWellFormed(key: ApiKeyInput): boolean

/** The library version. */
export declare const version: string

/** Options of JWT verification (jose's names where they exist). */
export interface JwtVerifyOptions {
  /** Accepted algorithms (required): e.g. ['RS256']. `none` is never accepted. */
  algorithms: string[] | string
  audience?: string | string[]
  issuer?: string
  subject?: string
  /** Clock skew tolerated: seconds, or a time span as jose takes it ('30s', '2m', '1h'). */
  clockTolerance?: number | string
  /** Claims that must be present besides exp (exp alone is required by default). */
  requiredClaims?: string[]
  /** Require `exp` (default true: a token without one never expires). */
  requireExp?: boolean
  /** Require `sub` (default false, as in jose). */
  requireSub?: boolean
  /** Check `exp` (default true). */
  verifyExp?: boolean
  /** Check `nbf` (default true). */
  verifyNbf?: boolean
  /** Check that `iat` is not in the future (default true). */
  verifyIat?: boolean
  /** Check `aud` (default true; false: `aud` is not looked at, PyJWT's verify_aud). */
  verifyAud?: boolean
  /** Check `iss` against `issuer` (default true). */
  verifyIss?: boolean
  /** Check `sub` against `subject` (default true). */
  verifySub?: boolean
  /** `aud` must be one string equal to the one `audience` (PyJWT's strict_aud). */
  strictAud?: boolean
  /** Tokens longer than this are refused before decoding (default 8192). */
  maxTokenLength?: number
}

/** A verified JWT. */
export interface VerifiedJwt {
  payload: Record<string, unknown>
  protectedHeader: Record<string, unknown>
}

/** A verified JWS with its raw payload. */
export interface VerifiedJws {
  payload: Buffer
  protectedHeader: Record<string, unknown>
}

/** jose error codes used in `err.code` by the JWT functions (ours stay in `err.irontokenCode`). */
export type JoseErrorCode =
  | 'ERR_JWT_INVALID'
  | 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
  | 'ERR_JWT_EXPIRED'
  | 'ERR_JWT_CLAIM_VALIDATION_FAILED'
  | 'ERR_JOSE_ALG_NOT_ALLOWED'
  | 'ERR_JWKS_NO_MATCHING_KEY'
  | 'ERR_JOSE_NOT_SUPPORTED'
  | 'ERR_JOSE_GENERIC'

/** An error thrown by the JWT functions. */
export interface JwtError extends Error {
  code: JoseErrorCode | ErrorCode
  irontokenCode: ErrorCode
}

/** Key material, judged by its content (never by its type): PEM (anywhere in
 * the text), DER, JWK or JWKS (JSON text or object), an OpenSSH public key, or
 * an HMAC secret; as a string, Buffer, Uint8Array or KeyObject. Asymmetric
 * material is never used as an HMAC secret. */
export type KeyInput = string | Buffer | Uint8Array | import('node:crypto').KeyObject | Record<string, unknown>

/** jose's error classes (`err instanceof errors.JWTExpired`). */
export declare class JOSEError extends Error {
  static code: string
  code: string
  /** irontoken's stable code. */
  irontokenCode: ErrorCode
}
export declare namespace errors {
  export { JOSEError }
  export class JWTInvalid extends JOSEError {}
  export class JWSInvalid extends JOSEError {}
  export class JWSSignatureVerificationFailed extends JOSEError {}
  export class JWTExpired extends JOSEError {
    claim?: string
    reason?: string
  }
  export class JWTClaimValidationFailed extends JOSEError {
    claim?: string
    reason?: string
  }
  export class JOSEAlgNotAllowed extends JOSEError {}
  export class JOSENotSupported extends JOSEError {}
  export class JWKSNoMatchingKey extends JOSEError {}
  export class JWKSInvalid extends JOSEError {}
  export class JWKSTimeout extends JOSEError {}
}

/** A key (or keyring) and options parsed once, for many tokens. */
export declare class JwtVerifier {
  constructor(key: KeyInput, options: JwtVerifyOptions)
  verify(token: string | Uint8Array, options?: { currentDate?: Date | number }): VerifiedJwt
  verifyJws(token: string | Uint8Array): VerifiedJws
}

/** A signing key and algorithm parsed once, for many tokens. */
export declare class JwtSigner {
  constructor(key: KeyInput, options?: { algorithm?: string; kid?: string })
  sign(payload: Record<string, unknown>, header?: Record<string, unknown>): string
}

/** A JWKS fetched from a URL and cached (jose's createRemoteJWKSet). */
export interface RemoteJWKSet {
  /** Fetches the set now; resolves its JSON. */
  reload(): Promise<Record<string, unknown>>
  /** How many times the set was fetched. */
  readonly fetchCount: number
}

/** Options of createRemoteJWKSet, in milliseconds (jose's names, and ours). */
export interface RemoteJWKSetOptions {
  /** How long a fetched set is used (default 600000). */
  cacheMaxAge?: number
  /** Least time between refetches for unknown kids (default 30000, at least 1000). A symmetric (oct) key in the set is never used. */
  cooldownDuration?: number
  /** Whole-request timeout (default 5000). */
  timeoutDuration?: number
  /** How long past cacheMaxAge the last good set serves while fetches fail (default 3600000). */
  staleMaxAge?: number
  /** Largest accepted answer in bytes (default 524288). */
  maxBytes?: number
  /** Allow http:// to any host (default: loopback only). */
  allowHttp?: boolean
  /** Extra request headers. */
  headers?: Record<string, string>
}

/** A remote JWKS: https:// (http:// only to loopback unless allowHttp). */
export declare function createRemoteJWKSet(url: string | URL, options?: RemoteJWKSetOptions): RemoteJWKSet

/** Verifies a JWT against a remote JWKS (off the JS thread); rejects with a JwtError. */
export declare function jwtVerify(
  token: string | Uint8Array,
  key: RemoteJWKSet,
  options: JwtVerifyOptions & { currentDate?: Date | number },
): Promise<VerifiedJwt>
/** Verifies a JWT; throws a JwtError when it is refused. */
export declare function jwtVerify(
  token: string | Uint8Array,
  key: KeyInput,
  options: JwtVerifyOptions & { currentDate?: Date | number },
): VerifiedJwt

/** Signs a JWT. */
export declare function jwtSign(
  payload: Record<string, unknown>,
  key: KeyInput,
  options?: { algorithm?: string; header?: Record<string, unknown>; kid?: string },
): string

/** One named limit: `count` requests per `period_ms`, bursts of up to `burst`. */
export interface Limit {
  name: string
  count: number
  /** Period length in ms (`period_ms` is accepted too). */
  periodMs?: number
  /** @deprecated use periodMs */
  period_ms?: number
  /** Largest burst (default: count). */
  burst?: number
}

/** The answer of a rate-limit check. */
export interface RateDecision {
  allowed: boolean
  retryAfterMs: number
  limits: { name: string; remaining: number; resetMs: number }[]
  /** True when the store failed and fail-open let the request through unchecked (remaining and resetMs unknown). */
  degraded: boolean
}

/** Options of `new RateLimiter()`. */
export interface RateLimiterOptions {
  /** Limits used by `check(key)`, parsed once. */
  limits?: Limit[]
  /** Buckets kept before full ones are evicted (default 1000000). */
  maxBuckets?: number
  /** "local" (default: this process only) or a redis:// URL (shared by every process naming it). */
  store?: string
  /** With Redis: allow requests while it fails (default false: STORAGE error). */
  failOpen?: boolean
  /** With Redis: milliseconds each call may take (default 1000). */
  timeoutMs?: number
  /** Decide in this manager's rate-limit store instead (its option rateLimitStore). */
  manager?: TokenManager
}

/** Rate limiter: GCRA buckets per key and named limit, in this process (default), on Redis (`store`) or in a manager's store (`manager`). */
export declare class RateLimiter {
  constructor(options?: RateLimiterOptions | number)
  /** Counts one request of `key` (1–512 bytes) against every limit (default: the constructor's), all-or-nothing. */
  check(key: string, limits?: Limit[], nowMs?: number): RateDecision
  /** Answers as `check` would, without counting. */
  peek(key: string, limits?: Limit[], nowMs?: number): RateDecision
  get size(): number
  /** What the store's failures cost so far: checks whose store failed, requests let through unchecked. */
  get failures(): { storeErrors: number; failOpen: number }
}

/** What a legacy check returns for a good old key: `importKey`'s fields, with the old record's id. */
export type LegacyFields = Omit<ImportKeyOptions, 'key' | 'keyHash' | 'legacyId'> & { legacyId: string }

/** Whether a query parameter looks like a credential (its name, or a value shaped like a key or a JWT): the adapters' rule, from core. */
export declare function isCredentialParam(name: string, value: string, header: string): boolean

/**
 * The HTTP status an application's route answers with for an error code
 * (`err.code`): 400 bad input, 401 a refused token, 404 not found, 409 a
 * state conflict, 429 a limit, 503 the store did not answer, 500 anything
 * else (core's table, as FastAPI's `install_error_handlers`).
 */
export declare function httpStatusOf(code: string): number

/** Whether a refusal may be a key of the old system: NOT_FOUND or MALFORMED, 16-512 visible ASCII characters, not in irontoken's format. */
export declare function upgradable(key: string, reason: VerifyReason): boolean

/**
 * Verifies `key` off the event loop; if irontoken does not know it and it may
 * be an old key, awaits `legacyCheck(key)` (the old system's bcrypt check):
 * the fields of `importKey` (without `key`; `legacyId`, the old record's id,
 * required) when the key is good, else null. The key is then imported and
 * verified again, so its next verification never reaches the old check. One
 * irontoken key per old record (bcrypt reads only 72 bytes of a key); a
 * deleted key stays deleted (its tombstone refuses the import).
 */
export declare function verifyOrUpgrade(
  tm: TokenManager,
  key: string,
  legacyCheck: (key: string) => LegacyFields | null | undefined | Promise<LegacyFields | null | undefined>,
  requiredScopes?: string[],
): Promise<VerifyResult>
