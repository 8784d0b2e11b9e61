'use strict'
// Sessions, usage, quotas (shared vectors), verifyKeyWith, agent budgets and
// signals through the Node.js binding (node:test).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Worker } = require('node:worker_threads')

const { TokenManager } = require('..')

const VECTORS = path.join(__dirname, '..', '..', 'tests', 'vectors')
const T_FEB = 1_769_904_000

function camel(o) {
  const out = {}
  for (const [k, v] of Object.entries(o)) out[k.replace(/_([a-z])/g, (_, c) => c.toUpperCase())] = v
  return out
}

const quotaDoc = JSON.parse(fs.readFileSync(path.join(VECTORS, 'quota.json'), 'utf8'))
for (const c of quotaDoc.cases) {
  test(`quota vector: ${c.name}`, () => {
    const tm = new TokenManager(':memory:', { manualClockStart: c.start })
    const kid = tm.createKey({ owner: c.owner }).record.id
    const specs = c.quotas.map((q) => {
      const spec = camel({ ...q, subject: q.scope === 'key' ? kid : c.owner })
      tm.setQuota(spec)
      return spec
    })
    let reservation = null
    c.steps.forEach((step, i) => {
      tm.advanceClock(step.advance || 0)
      const amounts = camel(step.amounts || {})
      let allowed
      switch (step.op) {
        case 'consume':
          allowed = tm.consumeQuota(kid, amounts).allowed
          break
        case 'peek':
          allowed = tm.peekQuota(kid, amounts).allowed
          break
        case 'reserve': {
          const r = tm.reserveQuota(kid, amounts, { ttlSeconds: step.ttl_seconds })
          if (r.reservation) reservation = r.reservation.id
          allowed = r.decision.allowed
          break
        }
        case 'settle':
          tm.settleReservation(reservation, amounts)
          break
        case 'release':
          tm.releaseReservation(reservation)
          break
        case 'add_credits': {
          const s = specs[step.quota]
          tm.addCredits(s.subject, step.amount, { metric: s.metric, scope: s.scope })
          break
        }
        default:
          throw new Error(step.op)
      }
      if (step.allowed !== undefined) assert.equal(allowed, step.allowed, `step ${i}`)
      const now = tm.peekQuota(kid, {})
      assert.deepEqual(now.quotas.map((q) => q.remaining), step.remaining, `step ${i}`)
      if (step.reset_at) assert.deepEqual(now.quotas.map((q) => q.resetAt), step.reset_at, `step ${i}`)
    })
    tm.close()
  })
}

test('sessions: idle and absolute expiry, list, end, key revocation', () => {
  const tm = new TokenManager(':memory:', { manualClockStart: T_FEB })
  const kid = tm.createKey({ owner: 'alice' }).record.id
  const s = tm.createSession({ owner: 'alice', keyId: kid, metadata: { max_memory_mb: 128 }, ttlSeconds: 100, idleTimeoutSeconds: 30 })
  assert.equal(s.sessionType, 'runtime')
  assert.deepEqual(s.metadata, { max_memory_mb: 128 }, 'metadata keys are kept as given')
  tm.advanceClock(20)
  assert.equal(tm.touchSession(s.id).expiresNextAt, T_FEB + 50)
  assert.equal(tm.updateSession(s.id, { status: 'paused' }).status, 'paused')
  tm.advanceClock(30)
  assert.equal(tm.getSession(s.id).status, 'expired')
  assert.throws(() => tm.touchSession(s.id), { code: 'SESSION_EXPIRED' })
  const other = tm.createSession({ owner: 'bob', sessionType: 'batch' })
  assert.deepEqual(tm.listSessions({ status: 'expired' }).items.map((x) => x.id), [s.id])
  assert.equal(tm.listSessions({ sessionType: 'batch' }).items.length, 1)
  assert.equal(tm.cleanupExpiredSessions(), 1)
  assert.equal(tm.endSession(other.id, { reason: 'done' }).endReason, 'done')
  assert.throws(() => tm.endSession(other.id), { code: 'SESSION_ENDED' })
  assert.throws(() => tm.getSession('x'), { code: 'SESSION_NOT_FOUND' })
  assert.throws(() => tm.createSession({ owner: 'a', bogus: 1 }), { code: 'INVALID_ARGUMENT' })
  const live = tm.createSession({ owner: 'alice', keyId: kid })
  tm.revokeKey(kid)
  assert.equal(tm.getSession(live.id).endReason, 'key_revoked')
  assert.equal(tm.purgeSessions(0), 3)
  tm.close()
})

test('usage: idempotent records, summaries, export', async () => {
  const tm = new TokenManager(':memory:', { manualClockStart: T_FEB })
  const a = tm.createKey({ owner: 'alice' }).record.id
  assert.deepEqual(tm.recordUsage({ requestId: 'r1', keyId: a, model: 'gpt', promptTokens: 10, completionTokens: 5, costMicros: 2_000_000 }), {
    requestId: 'r1',
    duplicate: false,
  })
  assert.equal(tm.recordUsage({ requestId: 'r1', keyId: a, promptTokens: 10 }).duplicate, true)
  assert.equal((await tm.recordUsageAsync({ requestId: 'r2', keyId: a, model: 'claude', cacheReadTokens: 7 })).duplicate, false)
  const rows = tm.usageSummary({ groupBy: ['model'] })
  assert.deepEqual(rows.map((r) => [r.model, r.totalTokens, r.cacheReadTokens]), [['claude', 0, 7], ['gpt', 15, 0]])
  const page = tm.exportUsage({ limit: 1 })
  assert.equal(page.items[0].requestId, 'r1')
  assert.equal(page.items[0].owner, 'alice')
  assert.ok(page.nextCursor)
  assert.throws(() => tm.recordUsage({ model: 'x' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.usageSummary({ groupBy: ['colour'] }), { code: 'INVALID_ARGUMENT' })
  assert.match(tm.metrics(), /irontoken_usage_cost_micros_total 2000000/)
  tm.close()
})

test('verifyKeyWith: RATE_LIMITED and USAGE_EXCEEDED next to the key codes', async () => {
  const tm = new TokenManager(':memory:', { manualClockStart: T_FEB })
  const c = tm.createKey({ owner: 'alice', rateLimits: [{ name: 'per_min', count: 2, periodMs: 60_000, burst: 2 }] })
  assert.deepEqual(c.record.rateLimits, [{ name: 'per_min', count: 2, periodMs: 60_000, burst: 2 }])
  tm.setQuota({ subject: c.record.id, metric: 'requests', period: 'day', limit: 3 })
  const opts = { rateLimit: true, quota: { requests: 1 } }
  const reasons = [0, 1, 2].map(() => tm.verifyKeyWith(c.key, opts).reason)
  assert.deepEqual(reasons, ['VALID', 'VALID', 'RATE_LIMITED'])
  assert.ok(tm.verifyKeyWith(c.key, opts).rateLimit.retryAfterMs > 0)
  tm.advanceClock(60)
  assert.equal((await tm.verifyKeyWithAsync(c.key, opts)).valid, true)
  const v = tm.verifyKeyWith(c.key, opts)
  assert.equal(v.reason, 'USAGE_EXCEEDED')
  assert.equal(v.quota.deniedBy.remaining, 0)
  assert.deepEqual(tm.updateKey(c.record.id, { rateLimits: [] }).rateLimits, [])
  assert.throws(() => tm.createKey({ owner: 'x', rateLimits: [{ name: 'a', count: 0, periodMs: 1, burst: 1 }] }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('verifyKeyWith answers the record verifyKey answers, metadata verbatim, decisions in camelCase', async () => {
  const tm = new TokenManager(':memory:', { manualClockStart: T_FEB })
  const meta = { user_id: 7, nested: { snake_case: [1, { deep_key: true }] } }
  const c = tm.createKey({ owner: 'alice', scopes: ['read'], metadata: meta, rateLimits: [{ name: 'per_min', count: 5, periodMs: 60_000, burst: 5 }] })
  tm.setQuota({ subject: c.record.id, metric: 'requests', period: 'day', limit: 10 })
  const plain = tm.verifyKey(c.key).record
  const answers = [
    tm.verifyKeyWith(c.key),
    tm.tryVerifyKeyWith(c.key, { requiredScopes: ['read'] }),
    await tm.verifyKeyWithAsync(c.key, { rateLimit: true }),
    tm.verifyKeyWith(c.key, { rateLimit: true, quota: { requests: 1 } }),
  ]
  answers.forEach((a, i) => {
    assert.equal(a.valid, true)
    assert.equal(a.reason, 'VALID')
    // absent optional fields absent in both, not null in one; one use more per call
    assert.deepStrictEqual(a.record, { ...plain, usageCount: plain.usageCount + i + 1 })
    assert.deepStrictEqual(a.record.metadata, meta)
    assert.equal('expiresAt' in a.record, false)
  })
  assert.equal(answers[0].rateLimit, null)
  assert.equal(answers[0].quota, null)
  assert.equal(answers[2].rateLimit.allowed, true)
  assert.equal(typeof answers[2].rateLimit.retryAfterMs, 'number')
  assert.equal(answers[3].quota.allowed, true)
  assert.equal(answers[3].quota.quotas[0].remaining, 9)
  const refused = tm.verifyKeyWith(c.key, { requiredScopes: ['write'] })
  assert.deepStrictEqual([refused.valid, refused.reason], [false, 'INSUFFICIENT_SCOPE'])
  assert.equal(refused.record.id, c.record.id)
  const unknown = tm.verifyKeyWith(c.key.slice(0, -6) + 'AAAAAA')
  assert.equal(unknown.valid, false)
  assert.equal(unknown.record, null)
  tm.close()
})

test('agents: budget, token replacement, leases', () => {
  const tm = new TokenManager(':memory:', { manualClockStart: T_FEB, masterKey: '07'.repeat(32) })
  tm.createSigningKey('ES256')
  const b = tm.createBudget({ owner: 'acme', limitMicros: 100_000_000 })
  const t1 = tm.issueAgentToken({ agentId: 'agent-1', budgetId: b.id, permissions: ['llm:call'] })
  assert.equal(tm.verifyAgentToken(t1.token).agentId, 'agent-1')
  const lease = tm.acquireLease(t1.token, 10_000_000)
  tm.reportLeaseUsage(lease.id, { requestId: 'q1', costMicros: 3_000_000 })
  assert.equal(tm.reportLeaseUsage(lease.id, { requestId: 'q1', costMicros: 3_000_000 }).spentMicros, 3_000_000)
  assert.equal(tm.getBudget(b.id).availableMicros, 90_000_000)
  assert.throws(() => tm.refreshLease(lease.id, 97_000_001), { code: 'USAGE_EXCEEDED' })
  const t2 = tm.issueAgentToken({ agentId: 'agent-1', budgetId: b.id })
  assert.equal(t2.replaced, t1.claims.jti)
  assert.throws(() => tm.verifyAgentToken(t1.token), { code: 'AGENT_TOKEN_REVOKED' })
  assert.throws(() => tm.refreshLease(lease.id, 1), { code: 'AGENT_TOKEN_REVOKED' })
  assert.equal(tm.revokeAgentToken('agent-1'), t2.claims.jti)
  assert.throws(() => tm.revokeAgentToken('agent-1'), { code: 'NOT_FOUND' })
  tm.close()
})

test('async variants: reservations and leases off the JS thread, same error codes', async () => {
  const tm = new TokenManager(':memory:', { manualClockStart: T_FEB, masterKey: '07'.repeat(32) })
  const kid = tm.createKey({ owner: 'o' }).record.id
  tm.setQuota({ subject: kid, metric: 'cost', period: 'day', limit: 100 })
  const r = await tm.reserveQuotaAsync(kid, { costMicros: 60 }, { ttlSeconds: 30 })
  assert.equal(r.decision.quotas[0].remaining, 40)
  const d = await tm.settleReservationAsync(r.reservation.id, { costMicros: 70 })
  assert.equal(d.quotas[0].remaining, 30)
  await assert.rejects(tm.settleReservationAsync(r.reservation.id, { costMicros: 1 }), { code: 'CONFLICT' })
  const s = await tm.createSessionAsync({ owner: 'o', idleTimeoutSeconds: 10 })
  assert.equal((await tm.touchSessionAsync(s.id)).status, 'active')
  assert.equal((await tm.endSessionAsync(s.id, { reason: 'bye' })).endReason, 'bye')
  await assert.rejects(tm.endSessionAsync(s.id), { code: 'SESSION_ENDED' })
  assert.equal((await tm.updateKeyAsync(kid, { name: 'renamed' })).name, 'renamed')
  assert.equal((await tm.disableKeyAsync(kid)).status, 'disabled')
  assert.equal((await tm.enableKeyAsync(kid, { actor: 'ops' })).status, 'active')
  const gone = tm.createKey({ owner: 'o' }).record.id
  await tm.deleteKeyAsync(gone)
  await assert.rejects(tm.deleteKeyAsync(gone), { code: 'KEY_NOT_FOUND' })
  await tm.createSigningKeyAsync('EdDSA')
  const b = tm.createBudget({ owner: 'o', limitMicros: 1000 })
  const t = tm.issueAgentToken({ agentId: 'a', budgetId: b.id })
  const l = await tm.acquireLeaseAsync(t.token, 600)
  assert.equal((await tm.reportLeaseUsageAsync(l.id, { requestId: 'x', costMicros: 100 })).spentMicros, 100)
  await assert.rejects(tm.refreshLeaseAsync(l.id, 901), { code: 'USAGE_EXCEEDED' })
  assert.equal((await tm.refreshLeaseAsync(l.id, 900)).amountMicros, 1000)
  tm.close()
})

test('signals: failure bursts and quota thresholds', () => {
  const tm = new TokenManager(':memory:', { manualClockStart: T_FEB })
  const foreign = new TokenManager(':memory:').createKey({ owner: 'x' })
  for (let i = 0; i < 20; i++) tm.verifyKey(foreign.key)
  const ev = tm.drainEvents()
  assert.deepEqual(ev.map((e) => e.kind), ['auth_failure_burst'])
  assert.equal(ev[0].displayPrefix, foreign.record.displayPrefix)
  const kid = tm.createKey({ owner: 'o' }).record.id
  tm.setQuota({ subject: kid, metric: 'tokens', period: 'day', limit: 10 })
  tm.consumeQuota(kid, { tokens: 8 })
  tm.consumeQuota(kid, { tokens: 2 })
  assert.deepEqual(tm.drainEvents(10).map((e) => e.detail.level), [80, 100])
  tm.close()
})

test('worker threads consuming one quota on one file never overshoot', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'irontoken-node-'))
  const db = path.join(dir, 'q.db')
  const tm = new TokenManager(db)
  const kid = tm.createKey({ owner: 'acme' }).record.id
  tm.setQuota({ subject: kid, metric: 'requests', period: 'day', limit: 100 })
  const src = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { TokenManager } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const tm = new TokenManager(workerData.db, { durability: 'normal' })
    let granted = 0
    for (let i = 0; i < 40; i++) if (tm.consumeQuota(workerData.kid, { requests: 1 }).allowed) granted++
    tm.close()
    parentPort.postMessage(granted)`
  const counts = await Promise.all(
    [0, 1, 2, 3].map(
      () =>
        new Promise((resolve, reject) => {
          const w = new Worker(src, { eval: true, workerData: { db, kid } })
          w.once('message', resolve)
          w.once('error', reject)
        }),
    ),
  )
  assert.equal(counts.reduce((a, b) => a + b, 0), 100)
  assert.equal(tm.listQuotas(kid)[0].used, 100)
  tm.close()
})

test('bad input to the new calls throws with stable codes and writes nothing', () => {
  const tm = new TokenManager(':memory:', { manualClockStart: T_FEB })
  const kid = tm.createKey({ owner: 'o' }).record.id
  tm.setQuota({ subject: kid, metric: 'tokens', period: 'day', limit: 10 })
  for (const bad of [
    () => tm.consumeQuota(kid, { tokens: -1 }),
    () => tm.consumeQuota(kid, { tokens: 1.5 }),
    () => tm.consumeQuota(kid, { tokens: '3' }),
    () => tm.consumeQuota(kid, 'tokens'),
    () => tm.consumeQuota(kid, { tokenz: 1 }),
    () => tm.setQuota({ subject: kid, metric: 'bogus', period: 'day', limit: 1 }),
    () => tm.setQuota({ subject: kid, metric: 'tokens', period: 'day', limit: 1, refillAmount: 1, refillPeriod: 'day' }),
    () => tm.recordUsage({ keyId: kid, promptTokens: -3 }),
    () => tm.recordUsage({ keyId: kid, metadata: [1, 2] }),
    () => tm.createSession({ owner: '' }),
    () => tm.verifyKeyWith('itk_x', { quota: { requests: 1 }, rateLimits: true }),
    () => tm.createBudget({ owner: 'o', limitMicros: -5 }),
  ]) {
    assert.throws(bad, { code: 'INVALID_ARGUMENT' })
  }
  assert.throws(() => tm.consumeQuota('missing', { tokens: 1 }), { code: 'KEY_NOT_FOUND' })
  assert.throws(() => tm.releaseReservation('0'.repeat(36)), { code: 'NOT_FOUND' })
  assert.throws(() => tm.getLease('x'), { code: 'NOT_FOUND' })
  assert.equal(tm.peekQuota(kid, {}).quotas[0].used, 0)
  const e = (() => {
    try {
      tm.consumeQuota(kid, { tokenz: 1 })
    } catch (err) {
      return err
    }
  })()
  assert.match(e.message, /tokenz/)
  tm.close()
})
