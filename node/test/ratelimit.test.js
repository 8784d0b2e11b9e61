'use strict'
// RateLimiter through the Node.js binding (node:test): the shared vectors,
// limits parsed once, refusals of bad keys and limits, a limiter with its
// own limits, and its fast path.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const VECTORS = path.join(__dirname, '..', '..', 'tests', 'vectors')

test('rate limiter: shared vectors', () => {
  const { RateLimiter } = require('..')
  const doc = JSON.parse(fs.readFileSync(path.join(VECTORS, 'ratelimit.json'), 'utf8'))
  for (const c of doc.cases) {
    const rl = new RateLimiter()
    for (const step of c.steps) {
      const d = rl.check('key', c.limits, step.now_ms)
      const limits = step.limits.map((l) => ({ name: l.name, remaining: l.remaining, resetMs: l.reset_ms }))
      assert.deepEqual(d, { allowed: step.allowed, retryAfterMs: step.retry_after_ms, limits, degraded: false }, c.name)
    }
  }
  const rl = new RateLimiter()
  assert.throws(() => rl.check('k', [{ name: 's', count: 0, period_ms: 1, burst: 1 }]), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => rl.check('k', 'nope'), { code: 'INVALID_ARGUMENT' })
})

test('rate limiter: limits parsed once, camelCase results', () => {
  const { RateLimiter } = require('..')
  const rl = new RateLimiter({
    limits: [
      { name: 'perSecond', count: 2, periodMs: 1000, burst: 2 },
      { name: 'perMinute', count: 3, period_ms: 60000 }, // snake_case accepted, burst defaults to count
    ],
    maxBuckets: 1000,
  })
  const got = [0, 0, 0].map(() => rl.check('k', undefined, 0))
  assert.deepEqual(
    got.map((d) => d.allowed),
    [true, true, false],
  )
  assert.equal(got[2].retryAfterMs, 500)
  assert.deepEqual(got[1].limits, [
    { name: 'perSecond', remaining: 0, resetMs: 1000 },
    { name: 'perMinute', remaining: 1, resetMs: 40000 },
  ])
  assert.ok(rl.peek('k', undefined, 1000).allowed)
  assert.ok(rl.check('k', undefined, 1000).allowed)
  assert.ok(!rl.check('k', undefined, 1000).allowed)
  assert.equal(rl.size, 2)
  assert.ok(rl.check('other').allowed) // system clock
  assert.ok(new RateLimiter(10).check('k', [{ name: 'a', count: 1, periodMs: 1000 }], 0).allowed)
  assert.throws(() => new RateLimiter().check('k'), (e) => e.code === 'INVALID_ARGUMENT' && /no limits/.test(e.message))
  for (const bad of [
    { limits: [] },
    { limits: [{ name: 'a', count: 1 }] },
    { limits: [{ name: 'a', count: 1, periodMs: 1, extra: 1 }] },
    { limits: [{ name: 'a', count: -1, periodMs: 1 }] },
    { limits: [{ name: 'a', count: 1, periodMs: 1 }, { name: 'a', count: 2, periodMs: 1 }] },
    { limits: 'nope' },
    { maxBuckets: 0 },
    'nope',
  ]) {
    assert.throws(() => new RateLimiter(bad), { code: 'INVALID_ARGUMENT' }, JSON.stringify(bad))
  }
})

test('every limiter refuses empty and long keys and a limit name given twice', () => {
  // The standalone in-process limiter once took them all, where a
  // manager's stores refused them.
  const { RateLimiter, TokenManager } = require('..')
  const one = [{ name: 'perSecond', count: 10, periodMs: 1000 }]
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-rl-'))
  const limiters = [
    new RateLimiter(),
    new RateLimiter({ manager: new TokenManager(path.join(dir, 'rl.db')) }),
    new RateLimiter({ manager: new TokenManager(':memory:', { rateLimitStore: 'local' }) }),
  ]
  for (const rl of limiters) {
    for (const [key, limits] of [['', one], ['k'.repeat(513), one], ['k', [...one, ...one]]]) {
      assert.throws(() => rl.check(key, limits), { code: 'INVALID_ARGUMENT' }, `${key.length} ${limits.length}`)
      assert.throws(() => rl.peek(key, limits), { code: 'INVALID_ARGUMENT' }, `${key.length} ${limits.length}`)
    }
    assert.throws(() => rl.check('', one), (e) => e.code === 'INVALID_ARGUMENT' && /1-512 bytes/.test(e.message))
    assert.ok(rl.check('k'.repeat(512), one).allowed && rl.check('k', one).allowed)
  }
  const fast = new RateLimiter({ limits: one })
  assert.throws(() => fast.check(''), (e) => e.code === 'INVALID_ARGUMENT' && /1-512 bytes/.test(e.message))
  assert.throws(() => fast.peek('k'.repeat(513)), { code: 'INVALID_ARGUMENT' })
  assert.ok(fast.check('k').allowed)
  fs.rmSync(dir, { recursive: true, force: true })
})

test('check(key) on a limiter with its own limits reads the key as the general path does', () => {
  // check(key) is a plain Node-API function reading the key into a buffer;
  // check(key, limits) and peek go through napi-rs. Same bytes, same bucket,
  // same refusals.
  const { RateLimiter } = require('..')
  const one = [{ name: 'perHour', count: 1, periodMs: 3_600_000 }]
  const fast = new RateLimiter({ limits: one })
  const accepted = [
    'k',
    'k'.repeat(512),
    'k'.repeat(510) + 'é', // 512 bytes
    'k'.repeat(508) + '😀', // 512 bytes, a surrogate pair
    'a\u0000b',
    'lone\ud800', // read as U+FFFD by both paths
    'ключ',
  ]
  for (const key of accepted) {
    assert.equal(fast.peek(key).allowed, true, 'peek(key) counts nothing')
    assert.deepEqual(fast.peek(key), fast.peek(key, one))
    assert.equal(fast.check(key).allowed, true, key.length)
    const after = fast.peek(key, one)
    assert.equal(after.allowed, false, `the general path sees the same bucket (${key.length})`)
    assert.equal(after.limits[0].remaining, 0)
    assert.equal(fast.peek(key).allowed, false)
    assert.equal(fast.check(key).allowed, false)
  }
  assert.equal(fast.peek('lone\ufffd', one).allowed, false, 'a lone surrogate is U+FFFD on both paths')
  const refused = [
    '',
    'k'.repeat(513),
    'k'.repeat(511) + 'é', // 513 bytes
    'k'.repeat(509) + '😀', // 513 bytes
    'k'.repeat(100_000),
  ]
  for (const key of refused) {
    for (const call of [() => fast.check(key), () => fast.peek(key)]) {
      assert.throws(call, (e) => e.code === 'INVALID_ARGUMENT' && /1-512 bytes/.test(e.message), String(key.length))
    }
  }
  for (const key of [undefined, null, 5, {}, ['k'], Buffer.from('k'), Symbol('k')]) {
    for (const call of [() => fast.check(key), () => fast.peek(key)]) {
      assert.throws(
        call,
        (e) => e instanceof Error && e.code === 'INVALID_ARGUMENT' && e.message.startsWith('INVALID_ARGUMENT: '),
        typeof key,
      )
    }
  }
  assert.throws(() => fast.check(), { code: 'INVALID_ARGUMENT' })
  // Many limiters made and dropped: each check function holds its limiter
  // until both are collected; the answers of one never reach another.
  for (let i = 0; i < 2000; i++) {
    const rl = new RateLimiter({ limits: one })
    assert.equal(rl.check('same').allowed, true)
    assert.equal(rl.check('same').allowed, false)
  }
})

test('rate limiter: the fast path (own limits, system clock) answers like the general one', () => {
  const { RateLimiter } = require('..')
  for (const limits of [
    [{ name: 'perHour', count: 2, periodMs: 3_600_000 }],
    [
      { name: 'perHour', count: 2, periodMs: 3_600_000 },
      { name: 'perDay', count: 3, periodMs: 86_400_000 },
    ],
  ]) {
    const fast = new RateLimiter({ limits })
    const got = [0, 1, 2].map(() => fast.check('k'))
    assert.deepEqual(got.map((d) => d.allowed), [true, true, false])
    assert.deepEqual(got[0].limits.map((l) => l.name), limits.map((l) => l.name))
    assert.equal(got[1].limits[0].remaining, 0)
    assert.ok(got[2].retryAfterMs > 1_700_000 && got[2].retryAfterMs <= 1_800_000, String(got[2].retryAfterMs))
    // Each result is its own object: a later check does not change an earlier answer.
    assert.equal(got[0].limits[0].remaining, 1)
    assert.ok(fast.check('other').allowed)
  }
})
