'use strict'
// Bad input at the Node boundary is INVALID_ARGUMENT, never an abort:
// numeric options, safe integers into u64 fields, strings where arrays
// belong, times past 9999, NUL in lookups, lone surrogates, the cap on
// required scopes, exact BigInt sums.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { TokenManager, RateLimiter } = require('..')

test('numeric options out of range are INVALID_ARGUMENT, not an abort', () => {
  for (const o of [{ busyTimeoutMs: 2 ** 31 }, { busyTimeoutMs: 2 ** 60 }, { flushIntervalMs: 0 }, { busyTimeoutMs: -1 }, { busyTimeoutMs: 1.5 }]) {
    assert.throws(() => new TokenManager(':memory:', o), { code: 'INVALID_ARGUMENT' }, JSON.stringify(o))
  }
})

test('every safe integer reaches u64 fields; fractions and unsafe integers are refused', () => {
  const tm = new TokenManager(':memory:')
  try {
    const k = tm.createKey({ owner: 'owner' }).record
    // A $5,000 monthly cost quota: 5e9 micros.
    const q = tm.setQuota({ scope: 'key', subject: k.id, metric: 'cost', period: 'month', limit: 5e9 })
    assert.equal(q.limit, 5e9)
    assert.equal(tm.consumeQuota(k.id, { costMicros: 4e9 }).allowed, true)
    assert.equal(tm.consumeQuota(k.id, { costMicros: 2e9 }).allowed, false)
    const b = tm.createBudget({ owner: 'owner', limitMicros: 2 ** 53 - 1 })
    assert.equal(b.limitMicros, 2 ** 53 - 1)
    tm.recordUsage({ requestId: 'big', keyId: k.id, costMicros: 2 ** 53 - 1, promptTokens: 6e12 })
    tm.recordUsage({ requestId: 'big2', keyId: k.id, costMicros: 2 ** 53 - 1 })
    const [t] = tm.usageSummary({})
    assert.equal(t.promptTokens, 6e12)
    assert.ok(t.costMicros >= 2 ** 53) // a sum past the safe range is still reported, not an error
    for (const bad of [1.5, 2 ** 53, 1e20, -1, Infinity]) {
      assert.throws(() => tm.recordUsage({ keyId: k.id, costMicros: bad }), { code: 'INVALID_ARGUMENT' }, String(bad))
      assert.throws(() => tm.consumeQuota(k.id, { costMicros: bad }), { code: 'INVALID_ARGUMENT' }, String(bad))
    }
    const limiter = new RateLimiter()
    const d = limiter.check('k', [{ name: 'big', count: 5e9, period_ms: 8.64e10, burst: 5e9 }], 1)
    assert.equal(d.allowed, true)
  } finally {
    tm.close()
  }
})

test('a string where an array of strings belongs is INVALID_ARGUMENT saying so', () => {
  const tm = new TokenManager(':memory:')
  const k = tm.createKey({ owner: 'o', scopes: ['read'] })
  for (const [call, where] of [
    [() => tm.createKey({ owner: 'o', scopes: 'read' }), 'scopes'],
    [() => tm.verifyKey(k.key, 'read'), ''],
  ]) {
    assert.throws(call, (e) => {
      assert.equal(e.code, 'INVALID_ARGUMENT')
      assert.match(e.message, /^INVALID_ARGUMENT: expected an array of strings/)
      assert.ok(e.message.includes(where), e.message)
      return true
    })
  }
  // Options read as JSON say it their way.
  assert.throws(() => tm.verifyKeyWith(k.key, { requiredScopes: 'read' }), {
    code: 'INVALID_ARGUMENT',
    message: /expected a sequence/,
  })
  assert.equal(tm.verifyKey(k.key, ['read']).valid, true)
  tm.close()
})

test('times past the year 9999 are INVALID_ARGUMENT, never saturated or wrapped', () => {
  const last = 253402300799 // 9999-12-31T23:59:59Z, exact as a JS number
  const tm = new TokenManager(':memory:', { masterKey: '07'.repeat(32) })
  assert.equal(tm.createKey({ owner: 'o', expiresAt: last }).record.expiresAt, last)
  for (const o of [{ expiresAt: last + 1 }, { expiresIn: Number.MAX_SAFE_INTEGER }, { expiresIn: last }]) {
    assert.throws(() => tm.createKey({ owner: 'o', ...o }), { code: 'INVALID_ARGUMENT', message: /expires_?[aA]t|expires_?[iI]n/ }, JSON.stringify(o))
  }
  const c = tm.createKey({ owner: 'o' })
  assert.throws(() => tm.updateKey(c.record.id, { expiresAt: last + 1 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.rotateKey(c.record.id, { overlapSeconds: Number.MAX_SAFE_INTEGER }), { code: 'INVALID_ARGUMENT', message: /overlap/ })
  assert.throws(() => tm.createSession({ owner: 'o', ttlSeconds: Number.MAX_SAFE_INTEGER }), { code: 'INVALID_ARGUMENT', message: /ttl/ })
  tm.createSigningKey('ES256')
  assert.throws(() => tm.rotateSigningKey({ overlapSeconds: Number.MAX_SAFE_INTEGER }), { code: 'INVALID_ARGUMENT', message: /overlap/ })
  assert.throws(() => tm.rotateDue({ overlapSeconds: Number.MAX_SAFE_INTEGER }), { code: 'INVALID_ARGUMENT', message: /overlap/ })
  assert.equal(tm.listSigningKeys().length, 1)
  assert.throws(() => tm.exchangeApiKey(c.key, { ttlSeconds: Number.MAX_SAFE_INTEGER }), { code: 'INVALID_ARGUMENT', message: /ttl/ })
  assert.throws(() => tm.issueJwt({ sub: 'o' }, { ttlSeconds: Number.MAX_SAFE_INTEGER }), { code: 'INVALID_ARGUMENT', message: /ttl/ })
  for (const at of [-1, last + 1, Number.MAX_SAFE_INTEGER]) {
    assert.throws(() => tm.recordUsage({ keyId: c.record.id, requestId: `r${at}`, at }), { code: 'INVALID_ARGUMENT', message: /at must be/ })
  }
  tm.recordUsage({ keyId: c.record.id, requestId: 'last', at: last })
  assert.deepEqual(tm.usageSummary({ groupBy: ['day'] }).map((t) => t.day), ['9999-12-31'])
  assert.equal(tm.getKey(c.record.id).status, 'active')
  assert.ok(tm.exchangeApiKey(c.key, { ttlSeconds: 60 }).expiresAt > 0)
  tm.close()
})

test('a NUL in a lookup or a filter is INVALID_ARGUMENT on every store', () => {
  const tm = new TokenManager(':memory:')
  const nul = 'a\u0000b'
  for (const call of [
    () => tm.getKey(nul),
    () => tm.listKeys({ owner: nul }),
    () => tm.listAudit({ actor: nul }),
    () => tm.usageSummary({ model: nul }),
    () => tm.listSessions({ owner: nul }),
  ]) {
    assert.throws(call, { code: 'INVALID_ARGUMENT', message: /control characters/ })
  }
  const c = tm.createKey({ owner: 'o', metadata: { 'k\u0000': 'v\u0000' } })
  assert.deepEqual(tm.getKey(c.record.id).metadata, { 'k\u0000': 'v\u0000' })
  tm.close()
})

test('drainEvents refuses a negative count; lone surrogates are refused, not replaced', async () => {
  const tm = new TokenManager(':memory:')
  assert.throws(() => tm.drainEvents(-1), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.drainEvents(1.5), { code: 'INVALID_ARGUMENT' })
  assert.deepEqual(tm.drainEvents(0), [])
  for (const owner of ['a\uD800b', '\uDC00', 'x\uDBFF']) {
    assert.throws(() => tm.createKey({ owner }), { code: 'INVALID_ARGUMENT' })
    await assert.rejects(tm.createKeyAsync({ owner }), { code: 'INVALID_ARGUMENT' })
  }
  assert.throws(() => tm.createKey({ owner: 'a', scopes: ['r\uD800'] }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.createKey({ owner: 'a', metadata: { note: '\uDFFF' } }), { code: 'INVALID_ARGUMENT' })
  assert.equal(tm.listKeys().items.length, 0)
  // A well-formed pair is fine; verification takes anything (such a key is no key).
  tm.createKey({ owner: 'emoji \uD83D\uDE00' })
  assert.equal(tm.verifyKey('itk_\uD800').valid, false)
  tm.close()
})

test('one cap on required scopes: 1024 on every surface', () => {
  const tm = new TokenManager(':memory:')
  const k = tm.createKey({ owner: 'a', scopes: ['s'] })
  assert.equal(tm.verifyKey(k.key, Array(1024).fill('s')).valid, true)
  assert.throws(() => tm.verifyKey(k.key, Array(1025).fill('s')), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('usage sums past 2^53 arrive as exact BigInts; BigInt counts are taken', () => {
  const tm = new TokenManager(':memory:')
  const k = tm.createKey({ owner: 'big' })
  const max = Number.MAX_SAFE_INTEGER
  for (let i = 0; i < 2050; i++) {
    tm.recordUsage({ keyId: k.record.id, promptTokens: BigInt(max), costMicros: max, completionTokens: i === 0 ? 1n : 0 })
  }
  const [t] = tm.usageSummary()
  assert.equal(t.records, 2050)
  assert.equal(t.promptTokens, 2050n * BigInt(max)) // past 2^64 too
  assert.equal(t.costMicros, 2050n * BigInt(max))
  assert.equal(t.totalTokens, 2050n * BigInt(max) + 1n)
  assert.equal(typeof t.requests, 'number')
  assert.throws(() => tm.recordUsage({ keyId: k.record.id, promptTokens: BigInt(max) + 1n }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.recordUsage({ keyId: k.record.id, promptTokens: -1n }), { code: 'INVALID_ARGUMENT' })
  const quota = { scope: 'key', subject: k.record.id, metric: 'requests', period: 'day', limit: 5n }
  tm.setQuota(quota)
  assert.equal(quota.limit, 5n, "the caller's object is not changed")
  tm.close()
})
