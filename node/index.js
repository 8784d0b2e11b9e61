'use strict'
// irontoken for Node.js: loads the native addon built from bindings/node and
// gives its errors the stable codes of the core (err.code).

const util = require('node:util')

let native
try {
  native = require(process.env.IRONTOKEN_NATIVE_PATH || './irontoken.node')
} catch (e) {
  throw new Error(
    `irontoken: cannot load the native addon (${e.message}). Build it with \`make node\` from the repository root.`,
  )
}

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

// A rejected `*Async` call carries the stable code at the start of its message.
function mapAsyncError(e) {
  if (e && typeof e === 'object' && typeof e.message === 'string') {
    const m = /^([A-Z][A-Z_]+): /.exec(e.message)
    if (m) e.code = m[1]
  }
  return mapError(e)
}

function mapError(e) {
  if (e && typeof e === 'object' && NAPI_ARGUMENT_CODES.has(e.code)) {
    e.message = `INVALID_ARGUMENT: ${e.message}`
    e.code = 'INVALID_ARGUMENT'
  }
  return e
}

const { TokenManager, CreatedKey, VerifyResult, RateLimiter } = native

for (const [proto, name] of [TokenManager.prototype, RateLimiter.prototype].flatMap((p) =>
  Object.getOwnPropertyNames(p).map((n) => [p, n]),
)) {
  const desc = Object.getOwnPropertyDescriptor(proto, name)
  if (name === 'constructor' || typeof desc.value !== 'function') continue
  const method = desc.value
  Object.defineProperty(proto, name, {
    ...desc,
    value: function (...args) {
      let out
      try {
        out = method.apply(this, args)
      } catch (e) {
        throw mapError(e)
      }
      if (out && typeof out.then === 'function') {
        return out.catch((e) => {
          throw mapAsyncError(e)
        })
      }
      return out
    },
  })
}

/** Opens a TokenManager; argument errors carry code INVALID_ARGUMENT like every other error. */
class IronTokenManager extends TokenManager {
  constructor(path, options) {
    try {
      super(path, options)
    } catch (e) {
      throw mapError(e)
    }
  }
}
Object.defineProperty(IronTokenManager, 'name', { value: 'TokenManager' })

// verifyJwt takes jose-style options like jwtVerify; its errors carry jose codes.
const nativeVerifyJwt = TokenManager.prototype.verifyJwt
Object.defineProperty(TokenManager.prototype, 'verifyJwt', {
  configurable: true,
  writable: true,
  value: function (token, options) {
    try {
      return nativeVerifyJwt.call(this, token, policyJson(options))
    } catch (e) {
      throw joseError(e)
    }
  },
})

// Logging a CreatedKey must not print the key.
CreatedKey.prototype[util.inspect.custom] = function (depth, options, inspect) {
  const shown = { key: `${this.record.displayPrefix}…`, record: this.record }
  return `CreatedKey ${inspect(shown, options)}`
}
CreatedKey.prototype.toJSON = function () {
  return { key: `${this.record.displayPrefix}…`, record: this.record }
}

// A VerifyResult's fields are getters; show and serialize them like a plain object.
VerifyResult.prototype.toJSON = function () {
  return { valid: this.valid, reason: this.reason, record: this.record }
}
VerifyResult.prototype[util.inspect.custom] = function (depth, options, inspect) {
  return `VerifyResult ${inspect(this.toJSON(), options)}`
}

// JWT: options in jose's spelling become the core's policy JSON.
function policyJson(options) {
  const o = options || {}
  const known = new Set([
    'algorithms', 'audience', 'issuer', 'subject', 'clockTolerance', 'requiredClaims',
    'requireExp', 'requireSub', 'verifyExp', 'verifyNbf', 'verifyIat', 'maxTokenLength',
  ])
  for (const k of Object.keys(o)) {
    if (!known.has(k)) {
      const e = new Error(`INVALID_ARGUMENT: unknown option ${k}`)
      e.code = 'INVALID_ARGUMENT'
      throw e
    }
  }
  const p = { algorithms: o.algorithms || [] }
  if (o.audience !== undefined) p.audience = Array.isArray(o.audience) ? o.audience : [o.audience]
  if (o.issuer !== undefined) p.issuer = o.issuer
  if (o.subject !== undefined) p.subject = o.subject
  if (o.clockTolerance !== undefined) p.leeway = o.clockTolerance
  if (o.requiredClaims !== undefined) p.required = o.requiredClaims
  if (o.requireExp !== undefined) p.require_exp = o.requireExp
  if (o.requireSub !== undefined) p.require_sub = o.requireSub
  if (o.verifyExp !== undefined) p.verify_exp = o.verifyExp
  if (o.verifyNbf !== undefined) p.verify_nbf = o.verifyNbf
  if (o.verifyIat !== undefined) p.verify_iat = o.verifyIat
  if (o.maxTokenLength !== undefined) p.max_token_bytes = o.maxTokenLength
  return JSON.stringify(p)
}

// JWT errors carry jose's code in `code` where the meaning is the same, and
// irontoken's own stable code in `irontokenCode`.
function joseError(e) {
  mapError(e)
  if (e && typeof e === 'object' && typeof e.code === 'string') {
    e.irontokenCode = e.code
    const jose = native.joseCode(e.code)
    if (jose) e.code = jose
  }
  return e
}

function seconds(date) {
  if (date === undefined) return undefined
  return date instanceof Date ? Math.floor(date.getTime() / 1000) : date
}

/** A key (or keyring) and verification options parsed once, for many tokens. */
class JwtVerifier {
  constructor(key, options) {
    try {
      this._native = new native.JwtVerifier(key, policyJson(options))
    } catch (e) {
      throw joseError(e)
    }
  }

  /** Verifies a JWT; returns { payload, protectedHeader }. `currentDate` (Date or Unix seconds) fixes the clock. */
  verify(token, { currentDate } = {}) {
    try {
      return this._native.verify(token, seconds(currentDate))
    } catch (e) {
      throw joseError(e)
    }
  }

  /** Verifies a compact JWS; returns { payload: Buffer, protectedHeader }. */
  verifyJws(token) {
    try {
      return this._native.verifyJws(token)
    } catch (e) {
      throw joseError(e)
    }
  }
}

/** Verifies a JWT with `key` (PEM, JWK, JWKS or secret string, or Buffer secret). */
function jwtVerify(token, key, options = {}) {
  const { currentDate, ...rest } = options
  return new JwtVerifier(key, rest).verify(token, { currentDate })
}

/** A signing key and algorithm parsed once, for many tokens. */
class JwtSigner {
  constructor(key, { algorithm = 'HS256', kid } = {}) {
    try {
      this._native = new native.JwtSigner(key, algorithm, kid)
    } catch (e) {
      throw joseError(e)
    }
  }

  /** Signs `payload`; `header` adds header parameters. */
  sign(payload, header) {
    try {
      return this._native.sign(payload, header)
    } catch (e) {
      throw joseError(e)
    }
  }
}

/** Signs `payload` into a compact JWT. `options`: { algorithm = 'HS256', header, kid }. */
function jwtSign(payload, key, { algorithm = 'HS256', header, kid } = {}) {
  try {
    return native.jwtSign(payload, key, algorithm, header, kid)
  } catch (e) {
    throw joseError(e)
  }
}

function isWellFormed(key) {
  try {
    return native.isWellFormed(key)
  } catch (e) {
    throw mapError(e)
  }
}

module.exports = {
  TokenManager: IronTokenManager,
  CreatedKey,
  VerifyResult,
  JwtVerifier,
  JwtSigner,
  RateLimiter,
  jwtVerify,
  jwtSign,
  isWellFormed,
  version: native.version(),
}
