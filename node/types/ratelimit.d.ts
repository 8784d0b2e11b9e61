// RateLimiter: limits, decisions and options.

import type { TokenManager } from './manager'

/** One named limit: `count` requests per `period_ms`, bursts of up to `burst`. */
export interface Limit {
  name: string
  count: number
  /** Period length in ms (`period_ms` is accepted too). */
  periodMs?: number
  /** @deprecated use periodMs */
  period_ms?: number
  /** Largest burst (default: count). */
  burst?: number
}

/** The answer of a rate-limit check. */
export interface RateDecision {
  allowed: boolean
  retryAfterMs: number
  limits: { name: string; remaining: number; resetMs: number }[]
  /** True when the store failed and fail-open let the request through unchecked (remaining and resetMs unknown). */
  degraded: boolean
}

/** Options of `new RateLimiter()`. */
export interface RateLimiterOptions {
  /** Limits used by `check(key)`, parsed once. */
  limits?: Limit[]
  /** Buckets kept before full ones are evicted (default 1000000). */
  maxBuckets?: number
  /** "local" (default: this process only) or a redis:// URL (shared by every process naming it). */
  store?: string
  /** With Redis: allow requests while it fails (default false: STORAGE error). */
  failOpen?: boolean
  /** With Redis: milliseconds each call may take (default 1000). */
  timeoutMs?: number
  /** Decide in this manager's rate-limit store instead (its option rateLimitStore). */
  manager?: TokenManager
}

/** Rate limiter: GCRA buckets per key and named limit, in this process (default), on Redis (`store`) or in a manager's store (`manager`). */
export declare class RateLimiter {
  constructor(options?: RateLimiterOptions | number)
  /** Counts one request of `key` (1–512 bytes) against every limit (default: the constructor's), all-or-nothing. */
  check(key: string, limits?: Limit[], nowMs?: number): RateDecision
  /** Answers as `check` would, without counting. */
  peek(key: string, limits?: Limit[], nowMs?: number): RateDecision
  get size(): number
  /** What the store's failures cost so far: checks whose store failed, requests let through unchecked. */
  get failures(): { storeErrors: number; failOpen: number }
}
