// Type definitions of the irontoken Node.js binding.

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
  created_at: number
  verify_until: number | null
  retired_at: number | null
}

/** An access token issued for an API key. */
export interface AccessToken {
  token: string
  expires_at: number
  key_id: string
  owner: string
  scopes: string[]
}

export interface OpenOptions {
  /** 'full' (default: commits survive power loss) or 'normal'. */
  durability?: 'full' | 'normal'
  busyTimeoutMs?: number
  flushIntervalMs?: number
  /** Start a manual clock at this Unix time (tests); see `advanceClock`. */
  manualClockStart?: number
  /** Master key of managed signing keys, base64 or hex (>= 32 bytes); default: IRONTOKEN_MASTER_KEY. */
  masterKey?: string
  /** RSA size of generated RS256 signing keys (default 2048). */
  rsaKeyBits?: 2048 | 3072
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
  actor?: string
}

export interface ListKeysOptions {
  owner?: string
  status?: KeyStatus
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

/** A key just created or rotated. `key` is the plaintext, available only now. */
export declare class CreatedKey {
  private constructor()
  /** The plaintext key; logging or JSON-serializing the object hides it. */
  get key(): string
  get record(): KeyRecord
}

/** The entry object, opened on a SQLite path or ':memory:'. Calls are synchronous. */
export declare class TokenManager {
  constructor(path: string, options?: OpenOptions)
  createKey(options: CreateKeyOptions): CreatedKey
  verifyKey(key: string, requiredScopes?: string[]): VerifyResult
  getKey(keyId: string): KeyRecord
  listKeys(options?: ListKeysOptions): Page<KeyRecord>
  updateKey(keyId: string, options: UpdateKeyOptions): KeyRecord
  disableKey(keyId: string, options?: ActorOptions): KeyRecord
  enableKey(keyId: string, options?: ActorOptions): KeyRecord
  revokeKey(keyId: string, options?: RevokeOptions): KeyRecord
  rotateKey(keyId: string, options?: RotateKeyOptions): CreatedKey
  deleteKey(keyId: string, options?: ActorOptions): void
  listAudit(options?: ListAuditOptions): Page<AuditEntry>
  /** Generates a managed signing key and makes it active (needs a master key). */
  createSigningKey(algorithm: 'RS256' | 'ES256' | 'EdDSA' | 'HS256', options?: ActorOptions): ManagedKey
  /** Makes a new key active; the old one verifies for `overlapSeconds` more. */
  rotateSigningKey(options?: { algorithm?: string; overlapSeconds?: number; actor?: string }): ManagedKey
  retireSigningKey(kid: string, options?: ActorOptions): ManagedKey
  listSigningKeys(): ManagedKey[]
  /** The public JWKS of the keys that verify now (HMAC keys never appear). */
  jwks(): { keys: Record<string, unknown>[] }
  /** Signs claims with the active managed key (iat, exp, jti added when absent). */
  issueJwt(claims: Record<string, unknown>, options?: { ttlSeconds?: number }): string
  /** Verifies a token issued by this manager's keys. */
  verifyJwt(token: string, options: JwtVerifyOptions): VerifiedJwt
  /** Exchanges a valid API key for a short-lived access token. */
  exchangeApiKey(apiKey: string, options?: { requiredScopes?: string[]; ttlSeconds?: number }): AccessToken
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
  verifyKeyAsync(key: string, requiredScopes?: string[]): Promise<VerifyResult>
  revokeKeyAsync(keyId: string, options?: RevokeOptions): Promise<KeyRecord>
  rotateKeyAsync(keyId: string, options?: RotateKeyOptions): Promise<CreatedKey>
  createSigningKeyAsync(algorithm: 'RS256' | 'ES256' | 'EdDSA' | 'HS256', options?: ActorOptions): Promise<ManagedKey>
  rotateSigningKeyAsync(options?: { algorithm?: string; overlapSeconds?: number; actor?: string }): Promise<ManagedKey>
  flushAsync(): Promise<void>
}

/** True if `key` has the shape and checksum of an irontoken key (no database lookup). */
export declare function isWellFormed(key: string): boolean

/** The library version. */
export declare const version: string

/** Options of JWT verification (jose's names where they exist). */
export interface JwtVerifyOptions {
  /** Accepted algorithms (required): e.g. ['RS256']. `none` is never accepted. */
  algorithms: string[]
  audience?: string | string[]
  issuer?: string
  subject?: string
  /** Seconds of clock skew tolerated. */
  clockTolerance?: number
  /** Claims that must be present (exp and sub are required by default). */
  requiredClaims?: string[]
  requireExp?: boolean
  requireSub?: boolean
  verifyExp?: boolean
  verifyNbf?: boolean
  verifyIat?: boolean
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

/** An error thrown by the JWT functions. */
export interface JwtError extends Error {
  code: JoseErrorCode | ErrorCode
  irontokenCode: ErrorCode
}

/** Key material: PEM, JWK or JWKS JSON, an HMAC secret string, or a Buffer secret. */
export type KeyInput = string | Buffer

/** A key (or keyring) and options parsed once, for many tokens. */
export declare class JwtVerifier {
  constructor(key: KeyInput, options: JwtVerifyOptions)
  verify(token: string, options?: { currentDate?: Date | number }): VerifiedJwt
  verifyJws(token: string): VerifiedJws
}

/** A signing key and algorithm parsed once, for many tokens. */
export declare class JwtSigner {
  constructor(key: KeyInput, options?: { algorithm?: string; kid?: string })
  sign(payload: Record<string, unknown>, header?: Record<string, unknown>): string
}

/** Verifies a JWT; throws a JwtError when it is refused. */
export declare function jwtVerify(
  token: string,
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
  period_ms: number
  burst: number
}

/** The answer of a rate-limit check. */
export interface RateDecision {
  allowed: boolean
  retry_after_ms: number
  limits: { name: string; remaining: number; reset_ms: number }[]
}

/** In-process rate limiter: GCRA buckets per key and named limit (not shared across processes). */
export declare class RateLimiter {
  constructor(maxBuckets?: number)
  /** Counts one request of `key` against every limit, all-or-nothing. */
  check(key: string, limits: Limit[], nowMs?: number): RateDecision
  /** Answers as `check` would, without counting. */
  peek(key: string, limits: Limit[], nowMs?: number): RateDecision
  get size(): number
}
