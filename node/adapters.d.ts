// Types shared by irontoken/express and irontoken/fastify.
import type { Amounts, Authorization, JwtVerifier, KeyRecord, LegacyFields, RemoteJWKSet, TokenManager } from './index'

/**
 * What a guard puts on the request as `irontoken`: the key's record
 * (requireApiKey) or the token's claims (requireJwt). Narrow with a cast
 * or `'owner' in req.irontoken`.
 */
export type Identity = KeyRecord | Authorization | Record<string, unknown>

/** Options of requireApiKey (Express, Fastify) and of the Fastify plugin. */
export interface RequireApiKeyOptions {
  /** Scopes the key must all hold (else 403). */
  scopes?: string[]
  /** The header carrying the key (default 'X-API-Key'). */
  header?: string
  /** Apply the key's own rate limits (default true; else 429 with Retry-After). */
  rateLimit?: boolean
  /** Consume these amounts from the key's quotas on every request (else 429). */
  quota?: Amounts
  /**
   * Answer 400 CREDENTIAL_IN_QUERY to a request whose query string carries a
   * credential-looking parameter (api_key, token, ...; or a value shaped like
   * a key or a JWT): URLs are logged. Default true.
   */
  refuseQueryCredentials?: boolean
  /**
   * The old system's check (see verifyOrUpgrade): a key irontoken does not
   * know is checked by it and imported on its first use; it returns the
   * fields of importKey with the old record's id (legacyId), or null.
   */
  legacyCheck?: (key: string) => LegacyFields | null | undefined | Promise<LegacyFields | null | undefined>
  /**
   * Where the request names the model it calls: 'body' (the parsed JSON
   * body's `model`, as OpenAI- and Anthropic-shaped requests carry it) or a
   * function of the request. The key's model allow-list applies (403
   * MODEL_NOT_ALLOWED); a request naming no model is 400.
   */
  model?: 'body' | ((req: any) => string | undefined | Promise<string | undefined>)
  /**
   * Where the request declares its tokens: 'body' (`max_tokens`,
   * `max_completion_tokens` or `max_output_tokens`) or a function of the
   * request. Over the key's maxTokensPerRequest: 413 REQUEST_TOO_LARGE; its
   * limits in tokens count them, settled by recordLlmUsage after the call.
   */
  tokens?: 'body' | ((req: any) => number | undefined | Promise<number | undefined>)
}

/** Options of requireJwt; algorithms, audience, issuer and clockTolerance apply to a RemoteJWKSet or a TokenManager. */
export interface RequireJwtOptions {
  scopes?: string[]
  algorithms?: string[]
  audience?: string | string[]
  issuer?: string
  clockTolerance?: number | string
  /** Answer 400 CREDENTIAL_IN_QUERY to a request carrying a credential in its query string (default true). */
  refuseQueryCredentials?: boolean
  /** RFC 9449: require `Authorization: DPoP <token>` and one `DPoP` proof header; the token must be bound to the proof's key. */
  dpop?: boolean
  /** The manager that accepts each DPoP proof once (when the verifier is not a TokenManager). */
  replay?: TokenManager
  /** The server's current DPoP nonce: a proof without it gets 401 use_dpop_nonce with a DPoP-Nonce header. */
  dpopNonce?: () => string
  /** Where the TLS client certificate comes from: a header a TLS-terminating proxy sets (trusting it is your decision), or a function of the request; default the TLS socket. */
  clientCert?: string | ((req: unknown) => string | Uint8Array | undefined | null)
}

export type Manager = TokenManager
export type Verifier = JwtVerifier | RemoteJWKSet | TokenManager

/** Options of recordLlmUsage. */
export interface RecordLlmUsageOptions {
  /** The model called (required). */
  model: string
  promptTokens?: number
  completionTokens?: number
  cacheReadTokens?: number
  cacheWriteTokens?: number
  /** Cost in millionths of the currency unit. */
  costMicros?: number
  /** The header carrying the client's request id (default X-Request-ID): a retry counts once. */
  requestIdHeader?: string
  metadata?: Record<string, unknown>
  /** The key's record (default: the request's `irontoken`, set by requireApiKey). */
  record?: KeyRecord
}

/** Records one LLM call for the request's key; resolves false for a retried request already counted. */
export declare function recordLlmUsage(
  manager: Manager,
  req: { headers: Record<string, string | string[] | undefined>; irontoken?: Identity | null },
  options: RecordLlmUsageOptions,
): Promise<boolean>

/** A value of a capability guard that may depend on the request. */
export type PerRequest<T> = T | ((req: any) => T | undefined)

/** Options of requireCapability (Express and Fastify). */
export interface RequireCapabilityOptions {
  /** The tool the route calls. */
  tool: string
  /** The resource it acts on. */
  resource?: PerRequest<string>
  /** What the call costs (micro-units), charged when allowed. */
  costMicros?: PerRequest<number>
  /** The session the call belongs to. */
  sessionId?: PerRequest<string>
  /** Answer 400 to a credential in the query string (default true). */
  refuseQueryCredentials?: boolean
}
