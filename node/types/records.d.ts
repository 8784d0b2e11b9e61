// Records and requests: what the TokenManager takes and answers (keys,
// sessions, usage, quotas, agents, audit, pages).

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
  | 'MODEL_NOT_ALLOWED'
  | 'REQUEST_TOO_LARGE'

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
  | 'CAPABILITY_MALFORMED'
  | 'CAPABILITY_SEALED'
  | 'JWT_REPLAYED'
  | 'REFRESH_TOKEN_REUSED'
  | 'REFRESH_TOKEN_INVALID'
  | 'REFRESH_TOKEN_EXPIRED'
  | 'REFRESH_TOKEN_REVOKED'
  | 'DPOP_PROOF_INVALID'
  | 'DPOP_NONCE_REQUIRED'
  | 'DPOP_PROOF_REPLAYED'
  | 'DPOP_BINDING_MISMATCH'
  | 'MTLS_BINDING_MISMATCH'
  | 'SESSION_FINGERPRINT_MISMATCH'
  | 'SESSION_LIMIT_EXCEEDED'
  | 'MODEL_NOT_ALLOWED'
  | 'REQUEST_TOO_LARGE'

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
  /** Models the key may call (wildcard patterns; empty: any). */
  models: string[]
  /** Most tokens one request may declare (absent: no limit). */
  maxTokensPerRequest?: number
}

/** An owner's model policy, applied to every key of the owner with the key's own. */
export interface OwnerPolicy {
  owner: string
  models: string[]
  maxTokensPerRequest: number | null
  updatedAt: number
}

/** One named rate limit of a key: `count` per `periodMs`, bursts up to `burst`. */
export interface RateLimitSpec {
  name: string
  count: number
  periodMs: number
  burst: number
  /** 'tokens' for a limit of LLM tokens (absent: requests). */
  unit?: 'requests' | 'tokens'
}

/** A rate limit as given to createKey/updateKey: `burst` defaults to `count`. */
export interface RateLimitInput {
  name: string
  count: number
  periodMs: number
  /** Largest burst (default: count). */
  burst?: number
  /** 'tokens' for a limit of LLM tokens, counted by `verifyKeyWith(key, { tokens })` (default 'requests'). */
  unit?: 'requests' | 'tokens'
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
  /** Whether it is bound to a fingerprint (never the fingerprint itself). */
  fingerprintBound: boolean
}

export interface CreateSessionOptions {
  owner: string
  keyId?: string
  /** Default 'runtime'. */
  sessionType?: string
  metadata?: Record<string, unknown>
  ttlSeconds?: number
  idleTimeoutSeconds?: number
  /** Bind the session to a caller-chosen fingerprint (kept as its SHA-256). */
  fingerprint?: string
  /** At most this many live sessions for the owner (SESSION_LIMIT_EXCEEDED, or evictOldest). */
  maxConcurrent?: number
  /** With maxConcurrent: end the owner's oldest live sessions instead of refusing. */
  evictOldest?: boolean
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
  groupBy?: Array<'key' | 'owner' | 'model' | 'session' | 'agent' | 'day' | 'hour'>
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
  /** The hour's start, `YYYY-MM-DDTHH:00:00Z` (UTC), when grouped by hour. */
  hour?: string
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
  /** Apply the key's configured rate limits (its limits in tokens count `tokens`). */
  rateLimit?: boolean
  /** Consume these amounts from the key's (and its owner's) quotas. */
  quota?: Amounts
  /** Tokens the request declares (an estimate: settle with settleTokens); over the key's maxTokensPerRequest: REQUEST_TOO_LARGE. */
  tokens?: number
  /** The model the request calls; not among the key's models: MODEL_NOT_ALLOWED. */
  model?: string
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

/** What `mintCapability` writes into a capability token's first block. */
export interface MintCapabilityOptions {
  /** The tools the token may call (at least one). */
  tools: string[]
  /** Lifetime in seconds (1 to one year). */
  ttlSeconds: number
  /** Most that may ever be charged through the token (micro-units). */
  ceilingMicros?: number
  /** The resources it may touch (absent: any). */
  resources?: string[]
  /** A budget lease every charge is taken from. */
  leaseId?: string
  actor?: string
}

/** One narrowing block for `attenuate`; every field left out narrows nothing. */
export interface AttenuateOptions {
  tools?: string[]
  ceilingMicros?: number
  ttlSeconds?: number
  resources?: string[]
  sessionId?: string
  /** Raw Datalog appended to the block (facts, rules, checks). */
  datalog?: string
}

/** A tool call to `authorize`. */
export interface AuthorizeRequest {
  tool: string
  resource?: string
  /** Charged when allowed (micro-units). */
  costMicros?: number
  sessionId?: string
}

/** Stable reasons of an `Authorization`. */
export type CapabilityReason =
  | 'OK'
  | 'CAPABILITY_MALFORMED'
  | 'CAPABILITY_BAD_SIGNATURE'
  | 'CAPABILITY_REVOKED'
  | 'CAPABILITY_EXPIRED'
  | 'TOOL_NOT_ALLOWED'
  | 'CAPABILITY_DENIED'
  | 'CAPABILITY_TOO_COMPLEX'
  | 'CEILING_EXCEEDED'
  | 'BUDGET_EXCEEDED'
  | 'KEY_NOT_FOUND'
  | 'KEY_DISABLED'
  | 'KEY_REVOKED'
  | 'KEY_EXPIRED'

/** The answer of `authorize`. */
export interface Authorization {
  allowed: boolean
  reason: CapabilityReason
  message: string | null
  /** The API key the token acts for, and its owner. */
  keyId: string | null
  owner: string | null
  /** The tools every typed block allows. */
  tools: string[] | null
  /** The resources every typed block allows (null: any). */
  resources: string[] | null
  /** The earliest expiry in the chain (Unix seconds). */
  expiresAt: number | null
  /** The smallest ceiling in the chain. */
  ceilingMicros: number | null
  /** What can still be charged after this request (null: unbounded). */
  remainingMicros: number | null
  leaseId: string | null
  chargedMicros: number
  blocks: number
}

/** What a capability token states, unverified (`inspectCapability`). */
export interface CapabilityInfo {
  rootKeyId: number | null
  blocks: string[]
  revocationIds: string[]
  sealed: boolean
  tools: string[] | null
  resources: string[] | null
  expiresAt: number | null
  ceilingMicros: number | null
  keyId: string | null
}

/** Options of `issueTokenPair`. */
export interface IssueTokenPairOptions {
  scopes?: string[]
  /** Access-token lifetime (default 900 s). */
  ttlSeconds?: number
  /** Refresh-token lifetime: the family's idle timeout (default 14 days). */
  refreshTtlSeconds?: number
  /** The family's absolute lifetime (default 90 days, at most 366). */
  familyTtlSeconds?: number
  /** Further claims of every access token of the family, verbatim (not `sub`, `scope`, `fid`, `iat`, `exp`, `nbf`, `jti`). */
  claims?: Record<string, unknown>
  /** Bind the family to a DPoP key: its JWK thumbprint (a verified proof's `jkt`). */
  dpopJkt?: string
  /** Bind the family to a client certificate: its thumbprint (`certThumbprint`). */
  certThumbprint?: string
}

/** What a DPoP proof must match. */
export interface DpopCheckOptions {
  /** The request's method. */
  htm: string
  /** The request's URI (compared without query and fragment). */
  htu: string
  /** The access token sent with the proof: its hash must be the proof's `ath`. */
  accessToken?: string
  /** The nonce the server gave the client (`DPoP-Nonce`). */
  nonce?: string
  /** Oldest accepted `iat`, seconds (default 300). */
  maxAgeSeconds?: number
  /** The thumbprint the token is bound to (`cnf.jkt`). */
  jkt?: string
}

/** A verified DPoP proof. */
export interface DpopProof {
  jkt: string
  alg: string
  jwk: Record<string, unknown>
  jti: string
  iat: number
  htm: string
  htu: string
  ath: string | null
  nonce: string | null
}

/** The proof of possession presented with a bound token. */
export interface PresentedOptions {
  /** The `DPoP` header's proof. */
  dpopProof?: string
  /** The request's method (with `dpopProof`). */
  htm?: string
  /** The request's URI (with `dpopProof`). */
  htu?: string
  /** The nonce the server gave the client, if any. */
  dpopNonce?: string
  /** The TLS client certificate: PEM text, or DER / PEM bytes. */
  clientCert?: string | Uint8Array
}

/** An access token and the refresh token that gets the next pair. */
export interface TokenPair {
  accessToken: string
  /** Opaque `itkrt_...`; stored only as its SHA-256. */
  refreshToken: string
  expiresIn: number
  expiresAt: number
  refreshExpiresAt: number
  familyId: string
  tokenType: 'Bearer'
  scopes: string[]
}

/** A refresh-token family; times are Unix seconds. */
export interface TokenFamily {
  id: string
  subject: string
  scopes: string[]
  status: 'active' | 'revoked' | 'expired'
  createdAt: number
  expiresAt: number
  refreshedAt: number
  idleExpiresAt: number
  generation: number
  revokedAt: number | null
  /** `reuse_detected` when a spent refresh token came back. */
  revokeReason: string | null
}

/** A capability root key (never its private part). */
export interface CapabilityRoot {
  rootKeyId: number
  /** `ed25519/<hex>`, for any Biscuit verifier. */
  publicKey: string
  status: 'active' | 'verify_only' | 'retired'
  createdAt: number
  verifyUntil: number | null
}
