'use strict'
// RateLimiter: GCRA limits in this process, the manager's database or Redis.

const native = require('../binding.js').load()
const { mapError, invalidArgument } = require('./errors.js')

const { TokenManager } = native
const { rateLimiterNew, rateLimiterDecide, rateLimiterSettle, rateLimiterSize, rateLimiterChecker, rateLimiterBuffer, rateLimiterFailures } =
  native

// `check(key, { cost, limits, nowMs })` or the older `check(key, limits, nowMs)`.
function callOptions(limits, nowMs) {
  if (limits !== null && typeof limits === 'object' && !Array.isArray(limits)) {
    if (nowMs !== undefined) throw invalidArgument('give nowMs inside the options object')
    return { limits: limits.limits, nowMs: limits.nowMs, cost: limits.cost }
  }
  return { limits, nowMs, cost: undefined }
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

  /**
   * Counts one request of `key` against every limit, all-or-nothing:
   * `check(key, { cost })` counts `cost` tokens against the limits in tokens
   * (`unit: 'tokens'`) and 1 against the others.
   */
  check(key, limits, nowMs) {
    // The hot path: the limiter's limits, the system clock.
    if (limits === undefined && nowMs === undefined && this.#shared !== undefined) return this.#own(this.#check, key)
    return this.#decide(key, callOptions(limits, nowMs), true)
  }

  /** Answers as `check` would, without counting. */
  peek(key, limits, nowMs) {
    if (limits === undefined && nowMs === undefined && this.#shared !== undefined) return this.#own(this.#peek, key)
    return this.#decide(key, callOptions(limits, nowMs), false)
  }

  /**
   * Corrects the limits in tokens of `key` once a request's actual token
   * count is known: its check counted `estimated`, it used `actual`.
   */
  settle(key, { estimated, actual, limits, nowMs } = {}) {
    try {
      rateLimiterSettle(this.#native, key, estimated, actual, nowMs, limits)
    } catch (e) {
      throw mapError(e)
    }
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

  #decide(key, { limits, nowMs, cost }, consume) {
    let names = this.#names
    let allowed
    try {
      if (limits === undefined || limits === null) {
        allowed = rateLimiterDecide(this.#native, key, consume, nowMs, this.#buf, undefined, cost)
      } else {
        if (!Array.isArray(limits)) throw invalidArgument('limits must be an array')
        names = limits.map((l) => (l && typeof l === 'object' ? l.name : undefined))
        if (this.#buf.length < 1 + 2 * limits.length) this.#buf = new Float64Array(1 + 2 * limits.length)
        allowed = rateLimiterDecide(this.#native, key, consume, nowMs, this.#buf, limits, cost)
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

module.exports = { RateLimiter }
