'use strict'
// Errors as irontoken gives them in Node: every one carries the stable code
// of the core in `err.code`; JWT errors are jose's classes, with jose's code
// in `code` and ours in `irontokenCode`.

const native = require('../binding.js').load()

// napi-rs reports argument-conversion failures with its own status names;
// they all mean the caller passed a bad argument.
const NAPI_ARGUMENT_CODES = new Set([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
])

// A rejected `*Async` call's error carries the stable code (and a JWT
// refusal's claim) as data, set by the native side; napi's own argument
// errors are mapped like a synchronous call's.
function mapAsyncError(e) {
  return mapError(e)
}

function mapError(e) {
  if (e && typeof e === 'object' && NAPI_ARGUMENT_CODES.has(e.code)) {
    // napi-rs quotes the value it could not convert (`Failed to convert
    // JavaScript value \`...\``): a key passed as the wrong type must not
    // reach an error message, so the value is dropped.
    // A string where an array belongs (`scopes: 'read'`): napi-rs says it
    // could not read the array's length; say what was expected instead.
    e.message = `INVALID_ARGUMENT: ${e.message
      .replace(/JavaScript value `[^]*?` into/, 'JavaScript value into')
      .replace(/^Failed to get Array length/, 'expected an array of strings')}`
    e.code = 'INVALID_ARGUMENT'
  } else if (e instanceof TypeError && e.code === undefined) {
    // napi-rs converting a missing or null argument (`createKey()`).
    e.message = `INVALID_ARGUMENT: ${e.message}`
    e.code = 'INVALID_ARGUMENT'
  } else if (e && typeof e === 'object' && e.code === 'GenericFailure') {
    // A panic caught at the boundary (every native function catches them).
    e.message = `INTERNAL: ${e.message}`
    e.code = 'INTERNAL'
  }
  return e
}

function invalidArgument(message) {
  const e = new Error(`INVALID_ARGUMENT: ${message}`)
  e.code = 'INVALID_ARGUMENT'
  return e
}

// jose's error classes: `instanceof errors.JWTExpired` works as with jose, and
// each carries jose's `code` and irontoken's stable `irontokenCode`.
class JOSEError extends Error {
  static code = 'ERR_JOSE_GENERIC'
  constructor(message, irontokenCode) {
    super(message)
    this.name = this.constructor.name
    this.code = this.constructor.code
    this.irontokenCode = irontokenCode
  }
}
class JWTInvalid extends JOSEError { static code = 'ERR_JWT_INVALID' }
class JWSInvalid extends JOSEError { static code = 'ERR_JWS_INVALID' }
class JWSSignatureVerificationFailed extends JOSEError { static code = 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' }
class JWTExpired extends JOSEError { static code = 'ERR_JWT_EXPIRED' }
class JWTClaimValidationFailed extends JOSEError { static code = 'ERR_JWT_CLAIM_VALIDATION_FAILED' }
class JOSEAlgNotAllowed extends JOSEError { static code = 'ERR_JOSE_ALG_NOT_ALLOWED' }
class JOSENotSupported extends JOSEError { static code = 'ERR_JOSE_NOT_SUPPORTED' }
class JWKSNoMatchingKey extends JOSEError { static code = 'ERR_JWKS_NO_MATCHING_KEY' }
class JWKSInvalid extends JOSEError { static code = 'ERR_JWKS_INVALID' }
class JWKSTimeout extends JOSEError { static code = 'ERR_JWKS_TIMEOUT' }
const errors = {
  JOSEError, JWTInvalid, JWSInvalid, JWSSignatureVerificationFailed, JWTExpired,
  JWTClaimValidationFailed, JOSEAlgNotAllowed, JOSENotSupported, JWKSNoMatchingKey, JWKSInvalid, JWKSTimeout,
}
const BY_JOSE_CODE = new Map(Object.values(errors).map((c) => [c.code, c]))

// JWT errors carry jose's code in `code` where the meaning is the same, and
// irontoken's own stable code in `irontokenCode`; other errors (bad key
// material, bad arguments) keep our code in both.
function joseError(e) {
  mapError(e)
  if (!e || typeof e !== 'object' || typeof e.code !== 'string') return e
  const jose = native.joseCode(e.code)
  const Cls = jose && BY_JOSE_CODE.get(jose)
  if (!Cls) {
    e.irontokenCode = e.code
    return e
  }
  const out = new Cls(e.message, e.code)
  if (Cls === JWTClaimValidationFailed || Cls === JWTExpired) {
    // The claim as jose names it: data from core (`e.claim`), never read
    // out of the message.
    out.claim = typeof e.claim === 'string' ? e.claim : undefined
    out.reason = e.code === 'JWT_MISSING_CLAIM' ? 'missing' : 'check_failed'
  }
  return out
}

module.exports = { mapError, mapAsyncError, invalidArgument, errors, joseError }
