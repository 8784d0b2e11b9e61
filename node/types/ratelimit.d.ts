// RateLimiter: limits, decisions and options.

import type { TokenManager } from './manager'

/** One named limit: `count` units per `period_ms`, bursts of up to `burst`. */
export interface Limit {
  name: string
  count: number
  /** Period length in ms (`period_ms` is accepted too). */
  periodMs?: number
  /** @deprecated use periodMs */
  period_ms?: number
  /** Largest burst (default: count). */
  burst?: number
  /** What is counted: 'requests' (default) or 'tokens' (a check's `cost`: tokens per minute, say). */
  unit?: 'requests' | 'tokens'
}

/** Options of one `check` or `peek`. */
export interface CheckOptions {
  /** The request's tokens, counted against the limits in tokens (default 1); the others count 1. */
  cost?: number
  /** Limits of this call (default: the constructor's). */
  limits?: Limit[]
  /** The time in ms (in-process limits only; default: the system clock). */
  nowMs?: number
}

/** A settlement: the check counted `estimated` tokens, the request used `actual`. */
export interface SettleOptions {
  estimated: number
  actual: number
  limits?: Limit[]
  nowMs?: number
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
  /** `check(key, { cost })`: `cost` tokens against the limits in tokens, 1 against the others. */
  check(key: string, options: CheckOptions): RateDecision
  /** Answers as `check` would, without counting. */
  peek(key: string, limits?: Limit[], nowMs?: number): RateDecision
  peek(key: string, options: CheckOptions): RateDecision
  /** Corrects the limits in tokens of `key` once the actual count is known (an under-estimate can empty a bucket, never overdraw it beyond one burst). */
  settle(key: string, options: SettleOptions): void
  get size(): number
  /** What the store's failures cost so far: checks whose store failed, requests let through unchecked. */
  get failures(): { storeErrors: number; failOpen: number }
}
