'use strict'
// irontoken for Node.js: loads the native addon built from bindings/node and
// gives its errors the stable codes of the core (err.code).

const util = require('node:util')
const crypto = require('node:crypto')

// The addon for this platform (binding.js: IRONTOKEN_NATIVE_PATH, a local
// build, or the @irontoken/<platform> package).
const native = require('./binding.js').load()

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

const { TokenManager, CreatedKey } = native
const { rateLimiterNew, rateLimiterDecide, rateLimiterSize, rateLimiterChecker, rateLimiterBuffer, rateLimiterFailures } = native

// Arguments as the native layer takes them. A string with a lone surrogate
// is not Unicode: napi would store U+FFFD in its place without a word, so it
// is refused, as Python refuses it. A BigInt (counts, amounts, limits) is
// taken up to 2^53 - 1, the most any count or amount may be, and passed on
// as a Number (napi's JSON values have no BigInt). Objects holding a BigInt
// are copied, never changed. Verification takes any input (skipped).
function nativeArg(v, depth = 0) {
  if (typeof v === 'string') {
    if (!v.isWellFormed()) throw invalidArgument('a string holds a lone surrogate (not valid Unicode)')
    return v
  }
  if (typeof v === 'bigint') {
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw invalidArgument('a BigInt count or amount must be 0 to 2^53 - 1')
    }
    return Number(v)
  }
  if (!v || typeof v !== 'object' || depth >= 4 || ArrayBuffer.isView(v) || v instanceof crypto.KeyObject) return v
  if (Array.isArray(v)) {
    let out = v
    v.forEach((x, i) => {
      const y = nativeArg(x, depth + 1)
      if (y !== x) {
        if (out === v) out = v.slice()
        out[i] = y
      }
    })
    return out
  }
  if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) return v
  let out = v
  for (const [k, x] of Object.entries(v)) {
    const y = nativeArg(x, depth + 1)
    if (y !== x) {
      if (out === v) out = { ...v }
      out[k] = y
    }
  }
  return out
}

for (const [proto, name] of [TokenManager.prototype].flatMap((p) =>
  Object.getOwnPropertyNames(p).map((n) => [p, n]),
)) {
  const desc = Object.getOwnPropertyDescriptor(proto, name)
  if (name === 'constructor' || typeof desc.value !== 'function') continue
  const method = desc.value
  const checked = !name.startsWith('verify') && !name.startsWith('tryVerify')
  Object.defineProperty(proto, name, {
    ...desc,
    value: function (...args) {
      if (checked) {
        try {
          args = nativeArg(args)
        } catch (e) {
          if (name.endsWith('Async')) return Promise.reject(e)
          throw e
        }
      }
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

// Usage sums are added in 128 bits: one past 2^53 - 1 arrives as its
// decimal text and becomes a BigInt (a Number would be rounded).
const SUMMED = ['records', 'requests', 'promptTokens', 'completionTokens', 'cacheReadTokens', 'cacheWriteTokens', 'totalTokens', 'costMicros']
// A usage row's sums past 2^53 - 1 arrive as decimal text: exact BigInts.
function exactSums(row) {
  for (const f of SUMMED) if (typeof row[f] === 'string') row[f] = BigInt(row[f])
}

const nativeUsageSummary = TokenManager.prototype.usageSummary
Object.defineProperty(TokenManager.prototype, 'usageSummary', {
  configurable: true,
  writable: true,
  value: function (query) {
    const rows = nativeUsageSummary.call(this, query)
    rows.forEach(exactSums)
    return rows
  },
})

// stats: its usage rows as usageSummary's (a BigInt past 2^53).
const nativeStats = TokenManager.prototype.stats
Object.defineProperty(TokenManager.prototype, 'stats', {
  configurable: true,
  writable: true,
  value: function (options) {
    const s = nativeStats.call(this, options)
    exactSums(s.usage)
    s.topKeys.forEach(exactSums)
    return s
  },
})

/** Opens a TokenManager; argument errors carry code INVALID_ARGUMENT like every other error. */
class IronTokenManager extends TokenManager {
  constructor(path, options) {
    try {
      super(path, options)
    } catch (e) {
      throw mapError(e)
    }
  }

  /**
   * Opens the database IRONTOKEN_DB names; IRONTOKEN_RATE_LIMIT_STORE and
   * IRONTOKEN_STORAGE_TIMEOUT_MS fill those options when `options` leaves
   * them out (IRONTOKEN_MASTER_KEY is read as by the constructor).
   */
  static fromEnv(options = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object')
    let env
    try {
      env = native.envSettings(options.rateLimitStore, options.storageTimeoutMs)
    } catch (e) {
      throw mapError(e)
    }
    const merged = { ...options }
    if (env.rateLimitStore != null) merged.rateLimitStore = env.rateLimitStore
    if (env.storageTimeoutMs != null) merged.storageTimeoutMs = env.storageTimeoutMs
    return new this(env.db, merged)
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

// The answer of verifyKey, built here from the native answer text (the
// reason, then a newline and the record's JSON when the key was found):
// plain JS data, collected like any object, the record parsed when read.
class VerifyResult {
  #reason
  #json
  #record

  constructor(text) {
    const nl = text.indexOf('\n')
    this.#reason = nl < 0 ? text : text.slice(0, nl)
    this.#json = nl < 0 ? null : text.slice(nl + 1)
  }

  /** True only when `reason` is "VALID". */
  get valid() {
    return this.#reason === 'VALID'
  }

  /** Why: "VALID", "MALFORMED", "NOT_FOUND", "DISABLED", "REVOKED", "EXPIRED", "INSUFFICIENT_SCOPE". */
  get reason() {
    return this.#reason
  }

  /** The key's record when the key was found (also when refused), else null. */
  get record() {
    if (this.#record === undefined) this.#record = this.#json === null ? null : JSON.parse(this.#json)
    return this.#record
  }

  toJSON() {
    return { valid: this.valid, reason: this.reason, record: this.record }
  }

  [util.inspect.custom](depth, options, inspect) {
    return `VerifyResult ${inspect(this.toJSON(), options)}`
  }
}

TokenManager.prototype.verifyKey = function verifyKey(key, requiredScopes) {
  let text
  try {
    text = this.verifyKeyText(key, requiredScopes)
  } catch (e) {
    throw mapError(e)
  }
  return new VerifyResult(text)
}

TokenManager.prototype.tryVerifyKey = function tryVerifyKey(key, requiredScopes) {
  let text
  try {
    text = this.tryVerifyKeyText(key, requiredScopes)
  } catch (e) {
    throw mapError(e)
  }
  return text === null ? null : new VerifyResult(text)
}

// The names before tryVerifyKey / tryVerifyKeyWith, kept for one release:
// each warns once per process (DeprecationWarning IRONTOKEN_DEP_TRY_VERIFY).
const warned = new Set()
function renamed(oldName, newName) {
  return function (...args) {
    if (!warned.has(oldName)) {
      warned.add(oldName)
      process.emitWarning(`${oldName} is deprecated: use ${newName}`, { type: 'DeprecationWarning', code: 'IRONTOKEN_DEP_TRY_VERIFY' })
    }
    return this[newName](...args)
  }
}
TokenManager.prototype.verifyKeyNow = renamed('verifyKeyNow', 'tryVerifyKey')
TokenManager.prototype.verifyKeyWithNow = renamed('verifyKeyWithNow', 'tryVerifyKeyWith')

// verifyKeyWithAsync likewise: answered here when the core needs no write
// and no round trip for it (no quota; no shared rate limit to apply).
const nativeVerifyKeyWithAsync = TokenManager.prototype.verifyKeyWithAsync
Object.defineProperty(TokenManager.prototype, 'verifyKeyWithAsync', {
  configurable: true,
  writable: true,
  value: function verifyKeyWithAsync(key, options) {
    try {
      const now = this.tryVerifyKeyWith(key, options)
      if (now !== null) return Promise.resolve(now)
    } catch (e) {
      return Promise.reject(e) // mapped by the wrapper of tryVerifyKeyWith
    }
    return nativeVerifyKeyWithAsync.call(this, key, options)
  },
})

// A verification that needs no network round trip — always on SQLite (it
// reads memory or WAL pages and never waits for a writer), on PostgreSQL
// when the key is in the notified caches — takes a few microseconds: it is
// answered here, against ~60 µs for a trip through the libuv pool. The rest
// goes to the pool.
TokenManager.prototype.verifyKeyAsync = function verifyKeyAsync(key, requiredScopes) {
  let pending
  try {
    const now = this.tryVerifyKeyText(key, requiredScopes)
    if (now !== null) return Promise.resolve(new VerifyResult(now))
  } catch (e) {
    return Promise.reject(mapError(e))
  }
  try {
    pending = this.verifyKeyTextAsync(key, requiredScopes)
  } catch (e) {
    return Promise.reject(mapError(e))
  }
  return pending.then(
    (text) => new VerifyResult(text),
    (e) => {
      throw mapAsyncError(e)
    },
  )
}

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

function isWellFormed(key) {
  try {
    return native.isWellFormed(key)
  } catch (e) {
    throw mapError(e)
  }
}

// Rate limiter: the native side checks and writes plain numbers into a
// Float64Array; the result object is built here (a JS object literal costs
// a few nanoseconds, one built through N-API several hundred).
class RateLimiter {
  #native
  #names
  #buf
  #shared
  #check
  #peek

  /**
   * `new RateLimiter({ limits, maxBuckets, store, failOpen, timeoutMs, manager })`;
   * `new RateLimiter(maxBuckets)` still works.
   */
  constructor(options) {
    let maxBuckets
    let limits
    let store
    let failOpen
    let timeoutMs
    let manager
    if (options === undefined || typeof options === 'number') {
      maxBuckets = options
    } else if (options !== null && typeof options === 'object' && !Array.isArray(options)) {
      ;({ maxBuckets, limits, store, failOpen, timeoutMs, manager } = options)
    } else {
      throw invalidArgument('RateLimiter options must be { limits, maxBuckets, ... } or a number')
    }
    if (manager !== undefined && !(manager instanceof TokenManager)) {
      throw invalidArgument('manager must be a TokenManager')
    }
    try {
      this.#native = rateLimiterNew(maxBuckets, limits, { store, failOpen, timeoutMs }, manager)
    } catch (e) {
      throw mapError(e)
    }
    this.#names = limits === undefined ? undefined : limits.map((l) => l.name)
    this.#buf = new Float64Array(1 + 2 * Math.max(1, limits ? limits.length : 1))
    this.#shared = limits === undefined ? undefined : rateLimiterBuffer(this.#native)
    // check(key) and peek(key) bound to this limiter: native functions of one argument.
    this.#check = limits === undefined ? undefined : rateLimiterChecker(this.#native, true)
    this.#peek = limits === undefined ? undefined : rateLimiterChecker(this.#native, false)
  }

  /** Counts one request of `key` against every limit, all-or-nothing. */
  check(key, limits, nowMs) {
    // The hot path: the limiter's limits, the system clock.
    if (limits === undefined && nowMs === undefined && this.#shared !== undefined) return this.#own(this.#check, key)
    return this.#decide(key, limits, nowMs, true)
  }

  /** Answers as `check` would, without counting. */
  peek(key, limits, nowMs) {
    if (limits === undefined && nowMs === undefined && this.#shared !== undefined) return this.#own(this.#peek, key)
    return this.#decide(key, limits, nowMs, false)
  }

  // `check(key)` / `peek(key)` through the native function bound to this limiter.
  #own(bound, key) {
    let allowed
    try {
      allowed = bound(key)
    } catch (e) {
      throw mapError(e)
    }
    return this.#result(allowed, this.#names, this.#shared)
  }

  /** Number of buckets held. */
  get size() {
    return rateLimiterSize(this.#native)
  }

  /** What the store's failures cost so far: { storeErrors, failOpen } (requests let through unchecked). */
  get failures() {
    return rateLimiterFailures(this.#native)
  }

  #decide(key, limits, nowMs, consume) {
    let names = this.#names
    let allowed
    try {
      if (limits === undefined || limits === null) {
        allowed = rateLimiterDecide(this.#native, key, consume, nowMs, this.#buf)
      } else {
        if (!Array.isArray(limits)) throw invalidArgument('limits must be an array')
        names = limits.map((l) => (l && typeof l === 'object' ? l.name : undefined))
        if (this.#buf.length < 1 + 2 * limits.length) this.#buf = new Float64Array(1 + 2 * limits.length)
        allowed = rateLimiterDecide(this.#native, key, consume, nowMs, this.#buf, limits)
      }
    } catch (e) {
      throw mapError(e)
    }
    return this.#result(allowed, names, this.#buf)
  }

  #result(allowed, names, b) {
    const states = new Array(names.length)
    for (let i = 0; i < names.length; i++) {
      states[i] = { name: names[i], remaining: b[1 + 2 * i], resetMs: b[2 + 2 * i] }
    }
    // b[0] < 0: allowed unchecked by fail-open (the store failed).
    const degraded = b[0] < 0
    return { allowed, retryAfterMs: degraded ? 0 : b[0], limits: states, degraded }
  }
}

// Moving keys over from the old system (bcrypt-hashed keys cannot be looked
// up): irontoken first; the old check only for a key irontoken does not know
// that may be an old one; a good old key is imported on that first use.

/** Whether a refusal may be a key of the old system (see verifyOrUpgrade). */
function upgradable(key, reason) {
  // The rule lives in core (keys::may_be_legacy).
  return typeof key === 'string' && typeof reason === 'string' && native.mayBeLegacy(key, reason)
}

/**
 * Verifies `key` off the event loop; if irontoken does not know it and it may
 * be an old key, awaits `legacyCheck(key)` (the old bcrypt check) — the
 * fields of `importKey` (`legacyId` and `owner` required) when the key is
 * good, else null — imports the key and verifies it again. One irontoken key
 * per old record (bcrypt reads only 72 bytes); a deleted key stays deleted.
 */
async function verifyOrUpgrade(tm, key, legacyCheck, requiredScopes) {
  // The native calls take header bytes as they are; the legacy check and
  // the import need the text (bytes that are not UTF-8 are never upgraded).
  if (key instanceof Uint8Array) key = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('utf8')
  const result = await tm.verifyKeyAsync(key, requiredScopes)
  if (result.valid || !upgradable(key, result.reason)) return result
  const fields = await legacyCheck(key)
  if (!fields) return result
  if (typeof fields.legacyId !== 'string' || fields.legacyId === '') {
    throw invalidArgument(
      "legacyCheck must return legacyId, the old record's id: one irontoken key per old record (bcrypt reads only 72 bytes of a key)",
    )
  }
  try {
    await tm.importKeysAsync([{ ...fields, key }])
  } catch (e) {
    // CONFLICT: imported by a concurrent request, or refused (deleted, or its old record has a key)
    if (!e || e.code !== 'CONFLICT') throw e
  }
  return tm.verifyKeyAsync(key, requiredScopes)
}

// Every value here is a plain identifier: Node's ES-module loader finds the
// named exports of a CommonJS module by reading this literal (cjs-module-lexer),
// and stops at the first value that is not one (a member access or a call).
const isCredentialParam = native.isCredentialParam
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
  httpStatusOf,
  upgradable,
  verifyOrUpgrade,
  version,
}
