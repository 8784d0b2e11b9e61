'use strict'
// irontoken for Node.js: loads the native addon built from bindings/node and
// gives its errors the stable codes of the core (err.code). The parts live
// in lib/: errors.js, manager.js (TokenManager), jwt.js, ratelimit.js and
// migrate.js (moving keys over from an old system).

// The addon for this platform (binding.js: IRONTOKEN_NATIVE_PATH, a local
// build, or the @irontoken/<platform> package).
const native = require('./binding.js').load()
const { mapError, errors } = require('./lib/errors.js')
const { IronTokenManager, CreatedKey, VerifyResult } = require('./lib/manager.js')
const { JwtVerifier, jwtVerify, createRemoteJWKSet, JwtSigner, jwtSign } = require('./lib/jwt.js')
const { RateLimiter } = require('./lib/ratelimit.js')
const { upgradable, verifyOrUpgrade } = require('./lib/migrate.js')

/** True if `key` has the shape and checksum of an irontoken key (no database lookup). */
function isWellFormed(key) {
  try {
    return native.isWellFormed(key)
  } catch (e) {
    throw mapError(e)
  }
}

// Every value here is a plain identifier: Node's ES-module loader finds the
// named exports of a CommonJS module by reading this literal (cjs-module-lexer),
// and stops at the first value that is not one (a member access or a call).
const isCredentialParam = native.isCredentialParam

/** Narrows a capability token offline by one block (no store, no key). */
function attenuate(token, options) {
  try {
    return native.attenuate(token, options)
  } catch (e) {
    throw mapError(e)
  }
}

/** Seals a capability token: it authorizes as before, no block can be appended. */
function seal(token) {
  try {
    return native.seal(token)
  } catch (e) {
    throw mapError(e)
  }
}

/** What a capability token states (blocks, revocation ids, limits), unverified. */
function inspectCapability(token) {
  try {
    return native.inspectCapability(token)
  } catch (e) {
    throw mapError(e)
  }
}
/** Verifies a DPoP proof (RFC 9449) without the replay check; a manager's verifyDpopProof accepts each proof once. */
function verifyDpopProof(proof, options) {
  try {
    return native.verifyDpopProof(proof, options)
  } catch (e) {
    throw mapError(e)
  }
}

/** The RFC 7638 SHA-256 thumbprint of a public JWK: what `cnf.jkt` holds. */
function jwkThumbprint(jwk) {
  try {
    return native.jwkThumbprint(jwk)
  } catch (e) {
    throw mapError(e)
  }
}

/** The RFC 8705 thumbprint of a client certificate (PEM, DER or escaped PEM): what `cnf["x5t#S256"]` holds. */
function certThumbprint(cert) {
  try {
    return native.certThumbprint(cert)
  } catch (e) {
    throw mapError(e)
  }
}
/** The binding rule for claims another verifier checked: throws MTLS_BINDING_MISMATCH / DPOP_BINDING_MISMATCH; returns the jkt a proof must have (null: unbound). */
function tokenBinding(claims, options) {
  try {
    return native.tokenBinding(claims, options)
  } catch (e) {
    throw mapError(e)
  }
}
/** Checks an alert webhook's Irontoken-Signature header against the raw body and secret; throws INVALID_ARGUMENT otherwise. */
function verifyWebhookSignature(secret, header, body, options) {
  try {
    return native.verifyWebhookSignature(secret, header, body, options)
  } catch (e) {
    throw mapError(e)
  }
}
const httpStatusOf = native.httpStatusOf
const version = native.version()

module.exports = {
  TokenManager: IronTokenManager,
  CreatedKey,
  VerifyResult,
  JwtVerifier,
  JwtSigner,
  RateLimiter,
  jwtVerify,
  jwtSign,
  createRemoteJWKSet,
  errors,
  isWellFormed,
  isCredentialParam,
  attenuate,
  seal,
  inspectCapability,
  verifyDpopProof,
  jwkThumbprint,
  certThumbprint,
  tokenBinding,
  verifyWebhookSignature,
  httpStatusOf,
  upgradable,
  verifyOrUpgrade,
  version,
}
