'use strict'
// JWTs with jose's names and options: policies as the core takes them, key
// material in every form jose takes, verifiers and signers parsed once, and
// remote JWKS sets fetched off the event loop.

const crypto = require('node:crypto')
const native = require('../binding.js').load()
const { mapError, mapAsyncError, invalidArgument, joseError } = require('./errors.js')

// JWT: options in jose's spelling become the core's policy JSON.
const POLICY_OPTIONS = new Set([
  'algorithms', 'audience', 'issuer', 'subject', 'clockTolerance', 'requiredClaims',
  'requireExp', 'requireSub', 'verifyExp', 'verifyNbf', 'verifyIat', 'maxTokenLength',
  'verifyAud', 'verifyIss', 'verifySub', 'strictAud',
])

function policyJson(options) {
  const o = options || {}
  for (const k of Object.keys(o)) {
    if (!POLICY_OPTIONS.has(k)) {
      const e = new Error(`INVALID_ARGUMENT: unknown option ${k}`)
      e.code = 'INVALID_ARGUMENT'
      throw e
    }
  }
  const p = { algorithms: typeof o.algorithms === 'string' ? [o.algorithms] : o.algorithms || [] }
  if (o.audience !== undefined) p.audience = Array.isArray(o.audience) ? o.audience : [o.audience]
  if (o.issuer !== undefined) p.issuer = o.issuer
  if (o.subject !== undefined) p.subject = o.subject
  if (o.clockTolerance !== undefined) p.leeway = secs(o.clockTolerance, 'clockTolerance')
  if (o.requiredClaims !== undefined) p.required = o.requiredClaims
  if (o.requireExp !== undefined) p.require_exp = o.requireExp
  if (o.requireSub !== undefined) p.require_sub = o.requireSub
  if (o.verifyExp !== undefined) p.verify_exp = o.verifyExp
  if (o.verifyNbf !== undefined) p.verify_nbf = o.verifyNbf
  if (o.verifyIat !== undefined) p.verify_iat = o.verifyIat
  if (o.verifyAud !== undefined) p.verify_aud = o.verifyAud
  if (o.verifyIss !== undefined) p.verify_iss = o.verifyIss
  if (o.verifySub !== undefined) p.verify_sub = o.verifySub
  if (o.strictAud !== undefined) p.strict_aud = o.strictAud
  if (o.maxTokenLength !== undefined) p.max_token_bytes = o.maxTokenLength
  return JSON.stringify(p)
}

// jose's time spans: a number of seconds, or '30s', '2m', '1.5 hours', '1d'...
const SPAN = /^(\d+|\d+\.\d+) ?(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)$/i
const UNIT = { s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31557600 }

function secs(value, what) {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw invalidArgument(`${what} must be a finite number of seconds >= 0`)
    return Math.floor(value)
  }
  const m = typeof value === 'string' ? SPAN.exec(value.trim()) : null
  if (!m) throw invalidArgument(`${what} must be seconds or a time span such as '30s' or '2m'`)
  const unit = m[2].toLowerCase()
  const key = unit.startsWith('mi') || unit === 'm' ? 'm' : unit[0]
  return Math.round(parseFloat(m[1]) * UNIT[key])
}

// Key material as the core takes it (bytes or text, judged by content):
// KeyObjects (crypto.createPublicKey/createSecretKey/createPrivateKey),
// Uint8Array secrets (jose's TextEncoder convention), JWK and JWKS objects.
function keyInput(key, use) {
  if (key instanceof crypto.KeyObject) {
    if (key.type === 'secret') return key.export()
    if (key.type === 'public') return key.export({ type: 'spki', format: 'der' })
    if (use === 'verify') return crypto.createPublicKey(key).export({ type: 'spki', format: 'der' })
    return key.export({ type: 'pkcs8', format: 'der' })
  }
  if (key instanceof Uint8Array && !Buffer.isBuffer(key)) {
    return Buffer.from(key.buffer, key.byteOffset, key.byteLength)
  }
  if (key && typeof key === 'object' && !Buffer.isBuffer(key) && (typeof key.kty === 'string' || Array.isArray(key.keys))) {
    return JSON.stringify(key)
  }
  return key
}

function seconds(date) {
  if (date === undefined) return undefined
  return date instanceof Date ? Math.floor(date.getTime() / 1000) : date
}

// Tokens may come as Buffers (jose takes Uint8Array too).
function tokenText(token) {
  return token instanceof Uint8Array ? Buffer.from(token).toString('latin1') : token
}

/** A key (or keyring) and verification options parsed once, for many tokens. */
class JwtVerifier {
  constructor(key, options) {
    try {
      this._native = new native.JwtVerifier(keyInput(key, 'verify'), policyJson(options))
    } catch (e) {
      throw joseError(e)
    }
  }

  /** Verifies a JWT; returns { payload, protectedHeader }. `currentDate` (Date or Unix seconds) fixes the clock. */
  verify(token, { currentDate } = {}) {
    try {
      return this._native.verify(tokenText(token), seconds(currentDate))
    } catch (e) {
      throw joseError(e)
    }
  }

  /** Verifies a compact JWS; returns { payload: Buffer, protectedHeader }. */
  verifyJws(token) {
    try {
      return this._native.verifyJws(tokenText(token))
    } catch (e) {
      throw joseError(e)
    }
  }
}

/** Verifies a JWT with `key`: PEM, DER, JWK, JWKS, OpenSSH public key or HMAC
 * secret, as a string, Buffer, Uint8Array, KeyObject or JWK/JWKS object; what
 * a key is comes from its content, never from its type. */
function jwtVerify(token, key, options = {}) {
  const { currentDate, ...rest } = options
  if (typeof key === 'function' && key[REMOTE]) {
    // A remote set may fetch: the work runs off the JS thread; a Promise, as jose.
    let policy
    try {
      policy = policyJson(rest)
    } catch (e) {
      return Promise.reject(joseError(e))
    }
    const remote = key[REMOTE]
    const text = tokenText(token)
    const now = seconds(currentDate)
    try {
      // Cached and fresh: verified here, no trip to the thread pool.
      const done = remote.verifyCached(text, policy, now)
      if (done) return Promise.resolve(done)
    } catch (e) {
      return Promise.reject(joseError(e))
    }
    return remote.verifyAsync(text, policy, now).catch((e) => {
      throw joseError(mapAsyncError(e))
    })
  }
  return oneShotVerifier(key, rest).verify(token, { currentDate })
}

// Verifiers of one-shot jwtVerify calls, by key text then policy: a loop
// passing the same PEM or secret pays for parsing once. Bounded: the oldest
// entry goes when a map is full. (Keys given as Buffers or KeyObjects are
// parsed again, through the native cache of parsed keys by content.)
const ONE_SHOT_KEYS = 64
const ONE_SHOT_POLICIES = 16
const oneShotVerifiers = new Map()

function oneShotVerifier(key, options) {
  if (typeof key !== 'string') return new JwtVerifier(key, options)
  let policy
  try {
    policy = policyJson(options)
  } catch (e) {
    throw joseError(e)
  }
  let byPolicy = oneShotVerifiers.get(key)
  if (byPolicy === undefined) {
    if (oneShotVerifiers.size >= ONE_SHOT_KEYS) oneShotVerifiers.delete(oneShotVerifiers.keys().next().value)
    byPolicy = new Map()
    oneShotVerifiers.set(key, byPolicy)
  }
  let v = byPolicy.get(policy)
  if (v === undefined) {
    v = new JwtVerifier(key, options)
    if (byPolicy.size >= ONE_SHOT_POLICIES) byPolicy.delete(byPolicy.keys().next().value)
    byPolicy.set(policy, v)
  }
  return v
}

const REMOTE = Symbol('irontoken.remoteJwks')

/** A JWKS fetched from `url` (jose's createRemoteJWKSet): pass it as the key
 * of `jwtVerify`, which then returns a Promise. Options (milliseconds, jose's
 * names): cacheMaxAge [600000], cooldownDuration [30000, at least 1000], timeoutDuration
 * [5000]; and ours: staleMaxAge [3600000], maxBytes [524288], allowHttp
 * [false: http:// only to loopback], headers. */
function createRemoteJWKSet(url, options = {}) {
  const known = new Set(['cacheMaxAge', 'cooldownDuration', 'timeoutDuration', 'staleMaxAge', 'maxBytes', 'allowHttp', 'headers'])
  for (const k of Object.keys(options || {})) {
    if (!known.has(k)) throw invalidArgument(`unknown option ${k}`)
  }
  const o = options || {}
  const ms = (v, what, unit = 'milliseconds') => {
    if (v === undefined) return undefined
    if (v === Infinity && unit === 'milliseconds') return 366 * 86400 * 1000
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalidArgument(`${what} must be ${unit} >= 0`)
    return Math.floor(v)
  }
  const settings = {
    timeout_ms: ms(o.timeoutDuration, 'timeoutDuration'),
    cache_max_age_ms: ms(o.cacheMaxAge, 'cacheMaxAge'),
    cooldown_ms: ms(o.cooldownDuration, 'cooldownDuration'),
    stale_max_ms: ms(o.staleMaxAge, 'staleMaxAge'),
    max_bytes: ms(o.maxBytes, 'maxBytes', 'bytes'),
    allow_http: o.allowHttp === undefined ? undefined : Boolean(o.allowHttp),
    headers: o.headers,
  }
  let remote
  try {
    remote = new native.RemoteJwks(String(url instanceof URL ? url.href : url), JSON.stringify(settings))
  } catch (e) {
    throw mapError(e)
  }
  const set = function remoteJWKSet() {
    throw invalidArgument('pass the remote JWKS to jwtVerify as its key')
  }
  Object.defineProperty(set, REMOTE, { value: remote })
  Object.defineProperty(set, 'fetchCount', { get: () => remote.fetchCount })
  set.reload = () => remote.reloadAsync().catch((e) => {
    throw joseError(mapAsyncError(e))
  })
  return set
}

/** A signing key and algorithm parsed once, for many tokens. */
class JwtSigner {
  constructor(key, { algorithm = 'HS256', kid } = {}) {
    try {
      this._native = new native.JwtSigner(keyInput(key, 'sign'), algorithm, kid)
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
    return native.jwtSign(payload, keyInput(key, 'sign'), algorithm, header, kid)
  } catch (e) {
    throw joseError(e)
  }
}

module.exports = { policyJson, JwtVerifier, jwtVerify, createRemoteJWKSet, JwtSigner, jwtSign }
