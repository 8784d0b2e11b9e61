'use strict'
// The TokenManager class as Node sees it: arguments checked before the
// native side, errors with stable codes, verification answered on the event
// loop when it needs no round trip, usage sums exact past 2^53.

const util = require('node:util')
const crypto = require('node:crypto')
const native = require('../binding.js').load()
const { mapError, mapAsyncError, invalidArgument, joseError } = require('./errors.js')
const { policyJson } = require('./jwt.js')

const { TokenManager, CreatedKey } = native

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
// With requireFreshJti, the token's jti is claimed until its exp: a token
// accepted once is refused with JWT_REPLAYED after (every process on the store).
// A token bound to a DPoP key or a client certificate (cnf) needs dpopProof
// with the request's htm and htu (and dpopNonce), or clientCert.
const nativeVerifyJwt = TokenManager.prototype.verifyJwt
const nativeVerifyJwtOnce = TokenManager.prototype.verifyJwtOnce
Object.defineProperty(TokenManager.prototype, 'verifyJwt', {
  configurable: true,
  writable: true,
  value: function (token, options) {
    try {
      const { requireFreshJti, dpopProof, htm, htu, dpopNonce, clientCert, ...rest } = options || {}
      const verify = requireFreshJti ? nativeVerifyJwtOnce : nativeVerifyJwt
      const presented = dpopProof != null || htm != null || htu != null || clientCert != null
        ? { dpopProof, htm, htu, dpopNonce, clientCert }
        : undefined
      return verify.call(this, token, policyJson(rest), presented)
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

module.exports = { IronTokenManager, CreatedKey, VerifyResult }
