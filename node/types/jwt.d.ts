// JWTs with jose's names: options, answers, errors, verifiers, signers,
// remote JWKS sets.

import type { ErrorCode } from './records'

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
