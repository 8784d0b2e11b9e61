// Type definitions of the irontoken Node.js binding.
//
// The declarations live in types/: records.d.ts (keys, sessions, usage,
// quotas, agents, audit), manager.d.ts (TokenManager), jwt.d.ts and
// ratelimit.d.ts; this file re-exports them and declares the functions of
// index.js itself.

export * from './types/records'
export * from './types/manager'
export * from './types/jwt'
export * from './types/ratelimit'
import type { ApiKeyInput, AttenuateOptions, CapabilityInfo, DpopCheckOptions, DpopProof, VerifyReason, VerifyResult } from './types/records'
import type { ImportKeyOptions, TokenManager } from './types/manager'

/** True if `key` has the shape and checksum of an irontoken key (no database lookup). */
export declare function isWellFormed(key: ApiKeyInput): boolean

/** Narrows a capability token offline by one block: the result allows at most what `token` allows. */
export declare function attenuate(token: string, options?: AttenuateOptions): string

/** Seals a capability token: it authorizes as before, and no block can be appended. */
export declare function seal(token: string): string

/** What a capability token states (blocks, revocation ids, limits), unverified. */
export declare function inspectCapability(token: string): CapabilityInfo

/** Verifies a DPoP proof (RFC 9449) without the replay check; a manager's `verifyDpopProof` accepts each proof once. */
export declare function verifyDpopProof(proof: string, options: DpopCheckOptions & { now?: number }): DpopProof

/** The RFC 7638 SHA-256 thumbprint of a public JWK: what `cnf.jkt` holds. */
export declare function jwkThumbprint(jwk: Record<string, unknown>): string

/** The RFC 8705 thumbprint of a client certificate (PEM, DER or escaped PEM): what `cnf["x5t#S256"]` holds. */
export declare function certThumbprint(cert: string | Uint8Array): string

/** The binding rule for claims another verifier checked: throws MTLS_BINDING_MISMATCH for a certificate-bound token without that certificate, DPOP_BINDING_MISMATCH for a key-bound one without a proof; returns the jkt a proof must have (null: unbound). */
export declare function tokenBinding(claims: Record<string, unknown>, options?: { clientCert?: string | Uint8Array; proofGiven?: boolean }): string | null

/**
 * Checks an alert webhook's `Irontoken-Signature` header against the raw
 * body and the secret (HMAC-SHA256, its time within `toleranceSeconds`,
 * default 300, of `now`); throws INVALID_ARGUMENT for a forged, altered or
 * stale one.
 */
export declare function verifyWebhookSignature(
  secret: string | Uint8Array,
  header: string,
  body: string | Uint8Array,
  options?: { now?: number; toleranceSeconds?: number },
): void

/** The library version. */
export declare const version: string

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
