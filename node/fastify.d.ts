// irontoken/fastify: preHandler hooks and a plugin. `request.irontoken`
// carries the key's record or the token's claims.
import type { Identity, Manager, RequireApiKeyOptions, RequireCapabilityOptions, RequireJwtOptions, Verifier } from './adapters'
export type { Identity, RecordLlmUsageOptions, RequireApiKeyOptions, RequireCapabilityOptions, RequireJwtOptions } from './adapters'
export { recordLlmUsage } from './adapters'

// `request.irontoken` on Fastify's request (declaration merging).
declare module 'fastify' {
  interface FastifyRequest {
    /** The key's record (requireApiKey, the plugin) or the token's claims (requireJwt); null on unguarded routes. */
    irontoken?: Identity | null
  }
}

/** A Fastify preHandler hook. */
export type PreHandler = (request: any, reply: any) => Promise<unknown>

/** Verifies the API key in options.header (401/403/429/503 otherwise). */
export declare function requireApiKey(manager: Manager, options?: RequireApiKeyOptions): PreHandler
/** Verifies the Authorization: Bearer JWT (401/403/503 otherwise). */
export declare function requireJwt(verifier: Verifier, options?: RequireJwtOptions): PreHandler
/** Authorizes a call of options.tool under the Bearer capability token, charging costMicros (401/403/429/503 otherwise); the Authorization is `irontoken` on the request. */
export declare function requireCapability(manager: Manager, options: RequireCapabilityOptions): PreHandler
export declare function requireCapability(options: RequireCapabilityOptions & { manager: Manager }): PreHandler

/** The plugin: guards every route of the scope it is registered in. */
declare function irontokenFastify(fastify: any, options: RequireApiKeyOptions & { manager: Manager }): Promise<void>
export { irontokenFastify }
export default irontokenFastify
