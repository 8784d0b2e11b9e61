// irontoken/express: Express middleware. `req.irontoken` carries the key's
// record (requireApiKey) or the token's claims (requireJwt).
import type { Identity, Manager, RequireApiKeyOptions, RequireCapabilityOptions, RequireJwtOptions, Verifier } from './adapters'
export type { Identity, RecordLlmUsageOptions, RequireApiKeyOptions, RequireCapabilityOptions, RequireJwtOptions } from './adapters'
export { recordLlmUsage } from './adapters'

// `req.irontoken` on Express's Request (declaration merging).
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The key's record (requireApiKey) or the token's claims (requireJwt); absent on unguarded routes. */
      irontoken?: Identity
    }
  }
}

/** An Express middleware function. */
export type Middleware = (req: any, res: any, next: (err?: unknown) => void) => void

/** Verifies the API key in options.header (401/403/429/503 otherwise). */
export declare function requireApiKey(manager: Manager, options?: RequireApiKeyOptions): Middleware
/** Verifies the Authorization: Bearer JWT (401/403/503 otherwise). */
export declare function requireJwt(verifier: Verifier, options?: RequireJwtOptions): Middleware
/** Authorizes a call of options.tool under the Bearer capability token, charging costMicros (401/403/429/503 otherwise); the Authorization is `irontoken` on the request. */
export declare function requireCapability(manager: Manager, options: RequireCapabilityOptions): Middleware
export declare function requireCapability(options: RequireCapabilityOptions & { manager: Manager }): Middleware
