'use strict'
// LLM spend controls through the Node.js binding: tokens-per-minute limits
// counted with the request ones (all-or-nothing, settled after the call),
// per-key model allow-lists and a per-request token ceiling (refusals
// consume nothing), RateLimiter costs, and four processes on one TPM limit.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')
const { spawn } = require('node:child_process')

const { TokenManager, RateLimiter } = require('..')

const TPM = [
  { name: 'tpm', count: 1000, periodMs: 60_000, unit: 'tokens' },
  { name: 'rpm', count: 5, periodMs: 60_000 },
]

const llmKey = (tm) =>
  tm.createKey({ owner: 'acme', rateLimits: TPM, models: ['gpt-4o*', 'claude-*'], maxTokensPerRequest: 800 })

const remaining = (v) => v.rateLimit.limits.map((l) => l.remaining)

test('model policy: refusals with stable reasons that consume nothing', () => {
  const tm = new TokenManager(':memory:', { manualClockStart: 1_700_000_000 })
  const c = llmKey(tm)
  assert.deepEqual(c.record.models, ['gpt-4o*', 'claude-*'])
  assert.equal(c.record.maxTokensPerRequest, 800)
  assert.equal(c.record.rateLimits[0].unit, 'tokens')
  assert.equal(c.record.rateLimits[1].unit, undefined)
  let v = tm.verifyKeyWith(c.key, { rateLimit: true, tokens: 100, model: 'gpt-4o-mini' })
  assert.ok(v.valid)
  assert.deepEqual(remaining(v), [900, 4])
  for (const [o, reason] of [
    [{ model: 'gpt-3.5-turbo', tokens: 10 }, 'MODEL_NOT_ALLOWED'],
    [{ model: 'claude-3-opus', tokens: 801 }, 'REQUEST_TOO_LARGE'],
  ]) {
    v = tm.verifyKeyWith(c.key, { rateLimit: true, quota: { requests: 1 }, ...o })
    assert.equal(v.reason, reason)
    assert.equal(v.valid, false)
    assert.equal(v.rateLimit, null)
    assert.equal(v.record.id, c.record.id)
  }
  v = tm.verifyKeyWith(c.key, { rateLimit: true, tokens: 100, model: 'claude-3-opus' })
  assert.deepEqual(remaining(v), [800, 3], 'the refusals took nothing')
  // The key as verifyKey reads it carries the policy too.
  assert.deepEqual(tm.verifyKey(c.key).record.models, ['gpt-4o*', 'claude-*'])
  // Bad input is an error, not a refusal.
  assert.throws(() => tm.verifyKeyWith(c.key, { model: 'a b' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.verifyKeyWith(c.key, { tokens: -1 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.verifyKeyWith(c.key, { tokens: 1.5 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.createKey({ owner: 'a', models: [''] }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.createKey({ owner: 'a', maxTokensPerRequest: 0 }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('update, clear and rotation keep the policy', async () => {
  const tm = new TokenManager(':memory:', { manualClockStart: 1_700_000_000 })
  const c = llmKey(tm)
  const r = tm.updateKey(c.record.id, { models: ['claude-*'], clearMaxTokensPerRequest: true })
  assert.deepEqual(r.models, ['claude-*'])
  assert.equal(r.maxTokensPerRequest, undefined)
  assert.equal(tm.verifyKeyWith(c.key, { model: 'gpt-4o' }).reason, 'MODEL_NOT_ALLOWED')
  assert.throws(() => tm.updateKey(c.record.id, { maxTokensPerRequest: 5, clearMaxTokensPerRequest: true }), {
    code: 'INVALID_ARGUMENT',
  })
  const n = tm.rotateKey(c.record.id)
  assert.deepEqual(n.record.models, ['claude-*'])
  assert.equal((await tm.verifyKeyWithAsync(n.key, { model: 'gpt-4o' })).reason, 'MODEL_NOT_ALLOWED')
  tm.close()
})

test('settleTokens gives back an over-estimate and takes an under-estimate', async () => {
  const tm = new TokenManager(':memory:', { manualClockStart: 1_700_000_000 })
  const c = llmKey(tm)
  assert.deepEqual(remaining(tm.verifyKeyWith(c.key, { rateLimit: true, tokens: 700 })), [300, 4])
  const refused = tm.verifyKeyWith(c.key, { rateLimit: true, tokens: 400 })
  assert.equal(refused.reason, 'RATE_LIMITED')
  assert.equal(refused.rateLimit.retryAfterMs, 6000)
  tm.settleTokens(c.record.id, 700, 200)
  assert.deepEqual(remaining(tm.verifyKeyWith(c.key, { rateLimit: true, tokens: 400 })), [400, 3])
  await tm.settleTokensAsync(c.record.id, 400, 100_000)
  assert.equal(tm.verifyKeyWith(c.key, { rateLimit: true, tokens: 0 }).reason, 'RATE_LIMITED')
  assert.throws(() => tm.settleTokens('no-such-key', 1, 2), { code: 'KEY_NOT_FOUND' })
  assert.throws(() => tm.settleTokens(c.record.id, -1, 2), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('RateLimiter: check(key, { cost }), settle, and their errors', () => {
  const rl = new RateLimiter({ limits: TPM })
  let d = rl.check('k', { cost: 600, nowMs: 0 })
  assert.ok(d.allowed)
  assert.deepEqual(d.limits.map((l) => l.remaining), [400, 4])
  d = rl.check('k', { cost: 500, nowMs: 0 })
  assert.equal(d.allowed, false)
  assert.equal(d.retryAfterMs, 6000)
  assert.ok(rl.peek('k', { cost: 400, nowMs: 0 }).allowed)
  rl.settle('k', { estimated: 600, actual: 100, nowMs: 0 })
  assert.equal(rl.check('k', { cost: 900, nowMs: 0 }).limits[0].remaining, 0)
  // The older positional form still counts 1.
  assert.equal(rl.peek('k', undefined, 0).allowed, false)
  assert.throws(() => new RateLimiter({ limits: [TPM[1]] }).check('k', { cost: 5 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => rl.check('k', { cost: 1001 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => rl.check('k', { cost: -1 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => new RateLimiter({ limits: [{ name: 'x', count: 1, periodMs: 1, unit: 'bytes' }] }), {
    code: 'INVALID_ARGUMENT',
  })
  const tm = new TokenManager(':memory:', { manualClockStart: 1_700_000_000 })
  assert.equal(tm.rateLimit('k', TPM, { cost: 999 }).limits[0].remaining, 1)
  tm.close()
})

// One worker: 40 calls of 100 tokens against the key argv[3] in argv[1]
// (rate-limit store argv[2]); prints the tokens admitted.
const WORKER = `const it = require(${JSON.stringify(path.join(__dirname, '..'))});
  const [target, store, key] = process.argv.slice(1);
  const tm = new it.TokenManager(target, store === 'store' ? {} : { rateLimitStore: store });
  let spent = 0;
  for (let i = 0; i < 40; i++) {
    const v = tm.verifyKeyWith(key, { rateLimit: true, tokens: 100, model: 'm' });
    if (v.valid) spent += 100; else if (v.reason !== 'RATE_LIMITED') throw new Error(v.reason);
  }
  tm.close();
  process.stdout.write(String(spent))`

async function fourProcessesSpend(target, store) {
  const tm = new TokenManager(target, store === 'store' ? {} : { rateLimitStore: store })
  // 10 000 tokens an hour: nothing meaningful refills during the test.
  const { key } = tm.createKey({
    owner: 'acme',
    rateLimits: [{ name: 'tpm', count: 10_000, periodMs: 3_600_000, unit: 'tokens' }],
  })
  tm.close()
  const run = () =>
    new Promise((resolve, reject) => {
      const p = spawn(process.execPath, ['-e', WORKER, target, store, key])
      let out = ''
      p.stdout.on('data', (d) => (out += d))
      p.on('error', reject)
      p.on('close', (code) => (code === 0 ? resolve(Number(out)) : reject(new Error(`worker exited ${code}`))))
    })
  const got = await Promise.all([run(), run(), run(), run()])
  return got.reduce((a, b) => a + b, 0)
}

const scratchDb = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'itk-tpm-')), 'tpm.db')

test('four processes on one TPM limit (SQLite): exactly the limit', async () => {
  const spent = await fourProcessesSpend(scratchDb(), 'store')
  assert.ok(spent >= 10_000 && spent <= 10_100, String(spent))
})

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

test('four processes on one TPM limit (Redis): exactly the limit', async (t) => {
  if (!(await redisAnswers())) {
    if (process.env.CI) assert.fail(`no Redis at ${REDIS} (CI requires it)`)
    return t.skip(`skipped: no Redis at ${REDIS}`)
  }
  const url = `${REDIS}?key_prefix=itk-test:node-tpm:${crypto.randomUUID()}:`
  const spent = await fourProcessesSpend(scratchDb(), url)
  assert.ok(spent >= 10_000 && spent <= 10_100, String(spent))
})

test('usageSummary by hour (UTC buckets for dashboards)', () => {
  const tm = new TokenManager(':memory:', { manualClockStart: 1_700_000_000 })
  const keyId = tm.createKey({ owner: 'acme' }).record.id
  const t0 = 1_769_904_000 // 2026-02-01T00:00:00Z
  tm.recordUsage({ requestId: 'a', keyId, model: 'gpt', promptTokens: 10, at: t0 })
  tm.recordUsage({ requestId: 'b', keyId, model: 'gpt', promptTokens: 20, at: t0 + 3599 })
  tm.recordUsage({ requestId: 'c', keyId, model: 'gpt', promptTokens: 40, at: t0 + 3600 })
  const rows = tm.usageSummary({ groupBy: ['hour'] })
  assert.deepEqual(rows.map((r) => [r.hour, r.promptTokens]), [
    ['2026-02-01T00:00:00Z', 30],
    ['2026-02-01T01:00:00Z', 40],
  ])
  assert.throws(() => tm.usageSummary({ groupBy: ['minute'] }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('an owner policy holds every key of the owner with its own', () => {
  const tm = new TokenManager(':memory:', { manualClockStart: 1_700_000_000 })
  const c = llmKey(tm) // gpt-4o* and claude-*, 800 tokens at most
  const p = tm.setOwnerPolicy('acme', { models: ['claude-*'], maxTokensPerRequest: 500, actor: 'ops' })
  assert.deepEqual([p.owner, p.models, p.maxTokensPerRequest], ['acme', ['claude-*'], 500])
  assert.deepEqual(tm.getOwnerPolicy('acme'), p)
  assert.equal(tm.getOwnerPolicy('nobody'), null)
  assert.equal(tm.verifyKeyWith(c.key, { model: 'gpt-4o' }).reason, 'MODEL_NOT_ALLOWED')
  assert.equal(tm.verifyKeyWith(c.key, { model: 'claude-3', tokens: 501 }).reason, 'REQUEST_TOO_LARGE')
  assert.ok(tm.verifyKeyWith(c.key, { model: 'claude-3', tokens: 500 }).valid)
  assert.equal(tm.deleteOwnerPolicy('acme', { actor: 'ops' }), true)
  assert.equal(tm.deleteOwnerPolicy('acme'), false)
  assert.ok(tm.verifyKeyWith(c.key, { model: 'gpt-4o' }).valid)
  assert.throws(() => tm.setOwnerPolicy('', { models: ['x'] }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.setOwnerPolicy('acme', { bogus: 1 }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})
