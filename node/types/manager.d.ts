// The TokenManager class and its options.

import type { AccessToken, AgentClaims, AgentToken, AgentTokenOptions, Amounts, ApiKeyInput, AuditEntry, AuthorizeRequest, IssueTokenPairOptions, TokenFamily, TokenPair, DpopCheckOptions, DpopProof, PresentedOptions, Authorization, Budget, CapabilityRoot, MintCapabilityOptions, CreateSessionOptions, IronTokenEvent, KeyRecord, KeyStatus, Lease, ListSessionsOptions, ManagedKey, OwnerPolicy, Page, Quota, QuotaDecision, QuotaMetric, QuotaScope, QuotaSelector, QuotaSpec, RateLimitInput, Recorded, Reserved, Session, Stats, UsageQuery, UsageRecord, UsageReport, UsageTotals, VerifyResult, VerifyWithOptions, VerifyWithResult } from './records'
import type { JwtVerifyOptions, VerifiedJwt } from './jwt'
import type { Limit, RateDecision } from './ratelimit'

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
  /** Key records cached by verification (default 50000, about 560 bytes each); on SQLite a cached key is answered from memory while no key state changed. */
  keyCacheSize?: number
  /** SQLite page cache per connection, MiB (default 2, SQLite's own). */
  pageCacheMib?: number
  /** Memory-mapped part of the database file, MiB (default 0 = off; see docs/guides/storage.md). */
  mmapMib?: number
  /** Where rate-limit state lives: "store" (default: the database, shared by every process), "local" (per process) or a redis:// URL. */
  rateLimitStore?: string
  /** Allow requests when the rate-limit store fails (default false: STORAGE error). */
  rateLimitFailOpen?: boolean
  /** Milliseconds a rate-limit check waits for Redis (default 1000). */
  rateLimitTimeoutMs?: number
  /** Read key state from the database on every verification instead of the in-process cache (default false). PostgreSQL: the cache is kept by change notifications; SQLite: it is exact at every call (the state epoch) and this reads the row anyway. */
  strict?: boolean
  /** PostgreSQL: milliseconds one call may wait on the server in all — checkout, connect, statements, commit (default 5000); then STORAGE. */
  storageTimeoutMs?: number
  /** PostgreSQL: milliseconds a cached key state is trusted without proof that the change channel is alive (default 1000): a key revoked on any host is refused everywhere within it. */
  maxStalenessMs?: number
  /** PostgreSQL: verify from a stale cached state when the server cannot answer (default false: fail closed with STORAGE). A revoked key may then verify for the whole partition. */
  verifyFailOpen?: boolean
  /** Seconds after which keys without their own rotationPeriod are due (rotateDue). */
  defaultRotationPeriod?: number
  /** Quota alert levels, spend spikes and the alert webhook. */
  alerts?: AlertSettings
}

/** Where alerts are posted: `url` (https://, or http:// to loopback) and `secret` (HMAC-SHA256, at least 16 bytes). */
export interface WebhookSettings {
  url: string
  secret: string
  /** Event kinds delivered (default: quota_threshold, spend_spike, usage_spike, auth_failure_burst, refresh_token_reused). */
  events?: string[]
  /** Milliseconds one post may take (default 5000). */
  timeoutMs?: number
  /** Posts of one alert at most (default 5). */
  maxAttempts?: number
  /** Alerts waiting for delivery at most; more are dropped (default 1000). */
  queueSize?: number
  /** Milliseconds before the first retry, doubled each time (default 500). */
  backoffMs?: number
}

/** A manager's `alerts` option. */
export interface AlertSettings {
  /** Percent levels of every quota's limit raising a quota_threshold event once per window (default [80, 100]). */
  quotaLevels?: number[]
  /** A key's tokens (or cost) in the last minute above this many times its trailing average is a spend_spike (default 10; 0: off). */
  spikeFactor?: number
  /** Fewest tokens in one minute that can be a spike (default 10000). */
  spikeMinTokens?: number
  webhook?: WebhookSettings
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
  /** Models the key may call (wildcard patterns such as 'gpt-4o*'; default: any). */
  models?: string[]
  /** Most tokens one request may declare (`verifyKeyWith(key, { tokens })`). */
  maxTokensPerRequest?: number
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
  /** Replaces the model allow-list ([] allows any model). */
  models?: string[]
  maxTokensPerRequest?: number
  clearMaxTokensPerRequest?: boolean
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
  rateLimit(key: string, limits: Limit[], options?: { peek?: boolean; cost?: number }): RateDecision
  /** `rateLimit` off the JS thread (a Redis or database round trip). */
  rateLimitAsync(key: string, limits: Limit[], options?: { peek?: boolean; cost?: number }): Promise<RateDecision>
  /** Corrects key `keyId`'s limits in tokens once the actual count is known: `verifyKeyWith(key, { tokens: estimated })` counted `estimated`, the request used `actual`. */
  settleTokens(keyId: string, estimated: number, actual: number): void
  /** `settleTokens` off the JS thread. */
  settleTokensAsync(keyId: string, estimated: number, actual: number): Promise<void>
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
  /** Sets an owner's model policy (replacing any): every key of the owner is held to it as well as to its own (both allow-lists, the lower ceiling). */
  setOwnerPolicy(owner: string, options?: { models?: string[]; maxTokensPerRequest?: number; actor?: string }): OwnerPolicy
  /** An owner's model policy, or null. */
  getOwnerPolicy(owner: string): OwnerPolicy | null
  /** Removes an owner's model policy (audited); false if it had none. */
  deleteOwnerPolicy(owner: string, options?: { actor?: string }): boolean
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
  verifyJwt(token: string, options: JwtVerifyOptions & PresentedOptions & { /** Claim the token's `jti` until its `exp`: a replay is refused with JWT_REPLAYED. */ requireFreshJti?: boolean }): VerifiedJwt
  /** Verifies a DPoP proof (RFC 9449) for the request and accepts it once (its `jti` claimed on the store). */
  verifyDpopProof(proof: string, options: DpopCheckOptions): DpopProof
  /** Exchanges a valid API key for a short-lived access token. */
  exchangeApiKey(apiKey: ApiKeyInput, options?: { requiredScopes?: string[]; ttlSeconds?: number }): AccessToken
  /** Verifies a key, applies its rate limits and consumes quota, in one call. */
  verifyKeyWith(key: ApiKeyInput, options?: VerifyWithOptions): VerifyWithResult
  /** verifyKeyWith if it needs no write and no round trip (no quota; no shared rate limit to apply), else null. */
  tryVerifyKeyWith(key: ApiKeyInput, options?: VerifyWithOptions): VerifyWithResult | null
  /** @deprecated Renamed {@link tryVerifyKeyWith} (kept for one release; warns once). */
  verifyKeyWithNow(key: ApiKeyInput, options?: VerifyWithOptions): VerifyWithResult | null
  createSession(options: CreateSessionOptions): Session
  /** Checks a live session on a request (its fingerprint, if bound: SESSION_FINGERPRINT_MISMATCH otherwise) and records the activity. */
  verifySession(sessionId: string, options?: { fingerprint?: string }): Session
  /** Replaces a live session by a new id on a privilege change; the old id is refused from now on. */
  rotateSession(sessionId: string, options?: { fingerprint?: string }): Session
  /** Ends every live session of `owner` ("sign out everywhere") but `exceptSessionId`; returns how many. */
  endSessions(owner: string, options?: { reason?: string; exceptSessionId?: string }): number
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
  /** Mints a capability token (Biscuit, base64url) for an active key. */
  mintCapability(keyId: string, options: MintCapabilityOptions): string
  /** Decides a tool call under a capability token and charges its cost when allowed; a refusal is an answer, not an error. */
  authorize(token: string, request: AuthorizeRequest): Authorization
  /** `authorize` off the event loop. */
  authorizeAsync(token: string, request: AuthorizeRequest): Promise<Authorization>
  /** Revokes the token's last block (and every token attenuated from it); returns its revocation id (hex). */
  revokeCapability(token: string, options?: ActorOptions): string
  /** Revokes a block by revocation id (hex); true if it was not revoked before. */
  revokeCapabilityId(revocationId: string, options?: ActorOptions): boolean
  /** The active root's public key, `ed25519/<hex>` (created on first use; needs the master key). */
  capabilityPublicKey(): string
  /** Every root public key that verifies now, oldest first. */
  capabilityPublicKeys(): string[]
  /** Claims a one-time id (a token's `jti`): true the first time, false for every later claim, in every process and host on the store (or the Redis of rate limits). */
  claimJti(jti: string, options: { expiresAt: number }): boolean
  /** Starts a refresh-token family for `subject`: an access JWT (managed keys) and a refresh token that gets the next pair once. */
  issueTokenPair(subject: string, options?: IssueTokenPairOptions): TokenPair
  /** Spends `refreshToken` for the family's next pair; a token spent before throws REFRESH_TOKEN_REUSED and revokes the whole family. */
  refreshTokenPair(refreshToken: string, presented?: PresentedOptions): TokenPair
  /** The token family `familyId` (status computed now). */
  getTokenFamily(familyId: string): TokenFamily
  /** Revokes the family: its refresh token is refused (REFRESH_TOKEN_REVOKED); false if it was revoked already. */
  revokeTokenFamily(familyId: string, options?: { reason?: string }): boolean
  /** Revokes every live family of `subject` (sign-out everywhere); returns how many. */
  revokeTokenFamilies(subject: string, options?: { reason?: string }): number
  /** Every root key that verifies now, with its id, status and window. */
  capabilityRoots(): CapabilityRoot[]
  /** Replaces the active root; the previous one verifies `overlapSeconds` more (default 86400; 0: at once). */
  rotateCapabilityKey(options?: { overlapSeconds?: number; actor?: string }): CapabilityRoot
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
  issueTokenPairAsync(subject: string, options?: IssueTokenPairOptions): Promise<TokenPair>
  refreshTokenPairAsync(refreshToken: string, presented?: PresentedOptions): Promise<TokenPair>
}
