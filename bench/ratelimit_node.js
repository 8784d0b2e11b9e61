'use strict'
// Side-by-side: one rate-limit check from Node.js.
// irontoken RateLimiter (limits parsed once, check(key); and the per-call
// check(key, limits)) against rate-limiter-flexible's RateLimiterMemory
// (a dev dependency of node/) and a hand-written GCRA in plain JS.
// Run: `make bench-compare`.

const path = require('node:path')
const { measureSync, measureAsync } = require('./_measure')
const { RateLimiter } = require(path.join(__dirname, '..', 'node'))
const { RateLimiterMemory } = require(path.join(__dirname, '..', 'node', 'node_modules', 'rate-limiter-flexible'))

const LIMITS = [{ name: 'perSecond', count: 1e9, periodMs: 1000 }]

function handGcra(count, periodMs, burst) {
  const interval = periodMs / count
  const capacity = interval * burst
  const tat = new Map()
  return (key) => {
    const now = performance.now()
    const t = Math.max(tat.get(key) ?? now, now)
    const next = t + interval
    if (next - capacity > now) return false
    tat.set(key, next)
    return true
  }
}

async function main() {
  const rl = new RateLimiter({ limits: LIMITS })
  const hand = handGcra(1e9, 1000, 1e9)
  const flexible = new RateLimiterMemory({ points: 1e9, duration: 1 })
  const row = (name, us) => console.log(`  ${name.padEnd(50)} ${(us * 1000).toFixed(0).padStart(8)} ns/op`)
  console.log('Rate-limit check of one key, one limit, one Node process')
  row('irontoken new RateLimiter({limits}).check(key)', measureSync(() => rl.check('key-1'), 2e6))
  row('irontoken check(key, limits)', measureSync(() => rl.check('key-1', LIMITS), 5e5))
  row('hand-written GCRA (Map + performance.now)', measureSync(() => hand('key-1'), 2e6))
  row('rate-limiter-flexible RateLimiterMemory.consume', await measureAsync(() => flexible.consume('key-1'), 5e5))
}

main()
