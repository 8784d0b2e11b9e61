'use strict'
// Rate limits shared by processes: the manager's store (default), Redis,
// or per process ("local", opt-in); Redis down is STORAGE or fail-open.
// This file is also the worker script of the multi-process tests.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')

const { TokenManager, RateLimiter } = require('..')

const LIMIT = [{ name: 'per_minute', count: 10, periodMs: 60_000 }]
const ATTEMPTS = 25

if (process.env.ITK_WORKER) {
  const { kind, target, key } = JSON.parse(process.env.ITK_WORKER)
  let allowed = 0
  if (kind === 'redis') {
    const rl = new RateLimiter({ limits: LIMIT, store: target })
    for (let i = 0; i < ATTEMPTS; i++) allowed += rl.check(key).allowed ? 1 : 0
  } else {
    const tm = new TokenManager(target, kind === 'local' ? { rateLimitStore: 'local' } : {})
    for (let i = 0; i < ATTEMPTS; i++) allowed += tm.rateLimit(key, LIMIT).allowed ? 1 : 0
    tm.close()
  }
  process.stdout.write(String(allowed))
  process.exit(0)
}

const { test } = require('node:test')
const assert = require('node:assert/strict')

/** Runs four worker processes at once; the sum of what they were allowed. */
async function fourProcesses(kind, target, key) {
  const { spawn } = require('node:child_process')
  const runs = Array.from({ length: 4 }, () => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename], {
      env: { ...process.env, ITK_WORKER: JSON.stringify({ kind, target, key }) },
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('exit', (code) => (code === 0 ? resolve(Number(out)) : reject(new Error(`worker exit ${code}`))))
  }))
  return (await Promise.all(runs)).reduce((a, b) => a + b, 0)
}

function scratchDb() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-rl-'))
  const db = path.join(dir, 'rl.db')
  new TokenManager(db).close()
  return db
}

const REDIS = process.env.IRONTOKEN_TEST_REDIS_URL || 'redis://127.0.0.1:6379'

function redisAnswers() {
  const { hostname, port } = new URL(REDIS)
  return new Promise((resolve) => {
    const s = net.connect({ host: hostname, port: Number(port || 6379), timeout: 500 })
    s.on('connect', () => (s.destroy(), resolve(true)))
    s.on('error', () => resolve(false))
    s.on('timeout', () => (s.destroy(), resolve(false)))
  })
}

const scratchRedis = () => `${REDIS}?key_prefix=itk-test:node:${crypto.randomUUID()}:`

test('the default store holds one limit across four processes', async () => {
  assert.equal(await fourProcesses('manager', scratchDb(), 'client-1'), 10)
})

test('local limits are per process, as documented', async () => {
  assert.equal(await fourProcesses('local', scratchDb(), 'client-1'), 40)
})

test('Redis holds one limit across four processes', async (t) => {
  if (!(await redisAnswers())) return t.skip(`skipped: no Redis at ${REDIS}`)
  assert.equal(await fourProcesses('redis', scratchRedis(), 'client-1'), 10)
})

test('a manager on Redis: rateLimit, rateLimitAsync, peek, and a RateLimiter over it', async (t) => {
  if (!(await redisAnswers())) return t.skip(`skipped: no Redis at ${REDIS}`)
  const url = scratchRedis()
  const a = new TokenManager(':memory:', { rateLimitStore: url })
  const b = new TokenManager(':memory:', { rateLimitStore: url })
  let allowed = 0
  for (let i = 0; i < 8; i++) {
    allowed += a.rateLimit('k', LIMIT).allowed ? 1 : 0
    allowed += (await b.rateLimitAsync('k', LIMIT)).allowed ? 1 : 0
  }
  assert.equal(allowed, 10)
  const d = a.rateLimit('k', LIMIT, { peek: true })
  assert.equal(d.allowed, false)
  assert.ok(d.retryAfterMs > 0 && d.retryAfterMs <= 6000, String(d.retryAfterMs))
  assert.deepEqual(Object.keys(d.limits[0]).sort(), ['name', 'remaining', 'resetMs'])
  const rl = new RateLimiter({ limits: LIMIT, manager: a })
  assert.equal(rl.check('k').allowed, false)
  assert.equal(rl.size, 0)
})

test('Redis down: STORAGE within the timeout, or allowed when fail-open', () => {
  const down = 'redis://127.0.0.1:1'
  const rl = new RateLimiter({ limits: LIMIT, store: down, timeoutMs: 300 })
  const start = Date.now()
  assert.throws(() => rl.check('k'), (e) => e.code === 'STORAGE' && /Redis/.test(e.message))
  assert.ok(Date.now() - start < 2000)
  // Fail-open: allowed, but marked as unchecked, and counted.
  const open = new RateLimiter({ limits: LIMIT, store: down, failOpen: true })
  for (const d of [open.check('k'), open.peek('k'), open.check('k', LIMIT)]) {
    assert.equal(d.allowed, true)
    assert.equal(d.degraded, true)
    assert.equal(d.retryAfterMs, 0)
  }
  assert.deepEqual(open.failures, { storeErrors: 3, failOpen: 3 })
  assert.deepEqual(rl.failures, { storeErrors: 1, failOpen: 0 })
  const local = new RateLimiter({ limits: LIMIT })
  assert.equal(local.check('k').degraded, false)
  const tm = new TokenManager(':memory:', { rateLimitStore: down, rateLimitFailOpen: true })
  const d = tm.rateLimit('k', LIMIT)
  assert.equal(d.allowed, true)
  assert.equal(d.degraded, true)
  assert.match(tm.metrics(), /irontoken_rate_limit_fail_open_total 1/)
  const events = tm.drainEvents().filter((e) => e.kind === 'rate_limit_fail_open')
  assert.equal(events.length, 1)
  assert.deepEqual(new RateLimiter({ limits: LIMIT, manager: tm }).failures, { storeErrors: 1, failOpen: 1 })
  tm.close()
})

test('bad store options are INVALID_ARGUMENT', () => {
  assert.throws(() => new TokenManager(':memory:', { rateLimitStore: 'memcached://x' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => new RateLimiter({ limits: LIMIT, store: 'store' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => new RateLimiter({ limits: LIMIT, manager: {} }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => new TokenManager(':memory:').rateLimit('', LIMIT), { code: 'INVALID_ARGUMENT' })
})
