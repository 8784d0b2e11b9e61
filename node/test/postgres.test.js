'use strict'
// PostgreSQL standing in for a fleet: worker processes with their own
// pools and caches share one quota, one rate limit and revocations.
// Skipped with one line when no PostgreSQL answers. This file is also the
// workers' script.

const { spawn } = require('node:child_process')
const crypto = require('node:crypto')

const { TokenManager } = require('..')

if (process.env.ITK_PG_WORKER) {
  const { kind, url, arg } = JSON.parse(process.env.ITK_PG_WORKER)
  const tm = new TokenManager(url)
  let n = 0
  if (kind === 'quota') {
    for (let i = 0; i < 40; i++) n += tm.consumeQuota(arg, { requests: 1 }).allowed ? 1 : 0
  } else if (kind === 'rate') {
    const limit = [{ name: 'per_minute', count: 10, periodMs: 60_000 }]
    for (let i = 0; i < 25; i++) n += tm.rateLimit('client', limit).allowed ? 1 : 0
  } else if (kind === 'watch') {
    // Verify until refused; report when (ms since the epoch).
    if (!tm.verifyKey(arg).valid) process.exit(2)
    process.stdout.write('ready\n')
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && tm.verifyKey(arg).valid) {}
    n = Date.now()
  }
  tm.close()
  process.stdout.write(`${n}\n`)
  process.exit(0)
}

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Client } = require('pg')

const BASE = process.env.IRONTOKEN_TEST_POSTGRES_URL || 'postgresql://postgres@127.0.0.1:5432/test'

async function answers() {
  const c = new Client({ connectionString: BASE, connectionTimeoutMillis: 2000 })
  try {
    await c.connect()
    await c.end()
    return true
  } catch {
    return false
  }
}

/** A fresh schema for one test: its manager URL and a drop function. */
async function scratch() {
  const schema = `itk_node_${process.pid}_${crypto.randomBytes(6).toString('hex')}`
  const c = new Client({ connectionString: BASE })
  await c.connect()
  await c.query(`CREATE SCHEMA ${schema}`)
  await c.end()
  const sep = BASE.includes('?') ? '&' : '?'
  return {
    url: `${BASE}${sep}options=-csearch_path%3D${schema}`,
    async drop() {
      const d = new Client({ connectionString: BASE })
      await d.connect()
      await d.query(`DROP SCHEMA ${schema} CASCADE`)
      await d.end()
    },
  }
}

function worker(kind, url, arg, onLine) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename], {
      env: { ...process.env, ITK_PG_WORKER: JSON.stringify({ kind, url, arg }) },
    })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      if (onLine && out.includes('ready\n')) {
        onLine()
        onLine = undefined
      }
    })
    child.on('exit', (code) =>
      code === 0 ? resolve(Number(out.trim().split('\n').pop())) : reject(new Error(`worker exit ${code}`)),
    )
  })
}

test('PostgreSQL: TLS verifies the server certificate, never falls back to clear text', async (t) => {
  const CA = '/etc/ssl/certs/ssl-cert-snakeoil.pem'
  if (!(await answers())) return t.skip(`skipped: no PostgreSQL at ${BASE}`)
  if (!require('node:fs').existsSync(CA) || !BASE.includes('@127.0.0.1')) {
    return t.skip(`skipped: TLS needs the test server at 127.0.0.1 with ${CA}`)
  }
  const s = await scratch()
  const admin = new Client({ connectionString: BASE })
  await admin.connect()
  try {
    if ((await admin.query('SHOW ssl')).rows[0].ssl !== 'on') return t.skip('skipped: the test server has ssl off')
    const app = `itk_node_tls_${process.pid}`
    const trusted = `sslmode=verify-full&sslrootcert=${encodeURIComponent(CA)}`
    const local = s.url.replace('@127.0.0.1', '@localhost')
    const tm = new TokenManager(`${local}&application_name=${app}&${trusted}`)
    const created = tm.createKey({ owner: 'tls' })
    assert.equal(tm.verifyKey(created.key).valid, true)
    const { rows } = await admin.query(
      'SELECT s.ssl, count(*)::int AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) ' +
        'WHERE a.application_name = $1 GROUP BY s.ssl',
      [app],
    )
    assert.ok(rows.some((r) => r.ssl && r.n >= 1), JSON.stringify(rows))
    assert.ok(!rows.some((r) => !r.ssl), JSON.stringify(rows))
    tm.close()
    for (const bad of [`${local}&sslmode=require`, `${s.url}&${trusted}`]) {
      assert.throws(() => new TokenManager(bad), (e) => e.code === 'STORAGE' && /certificate/.test(e.message))
    }
  } finally {
    await admin.end()
    await s.drop()
  }
})

test('PostgreSQL: four processes share one quota exactly', async (t) => {
  if (!(await answers())) return t.skip(`skipped: no PostgreSQL at ${BASE}`)
  const s = await scratch()
  try {
    const tm = new TokenManager(s.url)
    const kid = tm.createKey({ owner: 'acme' }).record.id
    tm.setQuota({ scope: 'key', subject: kid, metric: 'requests', period: 'day', limit: 100 })
    const granted = await Promise.all([0, 1, 2, 3].map(() => worker('quota', s.url, kid)))
    // 4 x 40 = 160 attempts on 100: exactly 100.
    assert.equal(granted.reduce((a, b) => a + b, 0), 100)
    tm.close()
  } finally {
    await s.drop()
  }
})

test('PostgreSQL: one rate limit for the whole cluster', async (t) => {
  if (!(await answers())) return t.skip(`skipped: no PostgreSQL at ${BASE}`)
  const s = await scratch()
  try {
    new TokenManager(s.url).close()
    const allowed = await Promise.all([0, 1, 2, 3].map(() => worker('rate', s.url)))
    assert.equal(allowed.reduce((a, b) => a + b, 0), 10)
  } finally {
    await s.drop()
  }
})

test('PostgreSQL: a revocation reaches other processes within milliseconds', async (t) => {
  if (!(await answers())) return t.skip(`skipped: no PostgreSQL at ${BASE}`)
  const s = await scratch()
  try {
    const tm = new TokenManager(s.url)
    const created = tm.createKey({ owner: 'svc' })
    let ready
    const allReady = new Promise((resolve) => (ready = resolve))
    let readyCount = 0
    const watchers = [0, 1].map(() =>
      worker('watch', s.url, created.key, () => {
        if (++readyCount === 2) ready()
      }),
    )
    await allReady
    await new Promise((r) => setTimeout(r, 200))
    const revokedAt = Date.now()
    tm.revokeKey(created.record.id)
    const seen = await Promise.all(watchers)
    for (const at of seen) assert.ok(at - revokedAt < 500, `lag ${at - revokedAt} ms`)
    tm.close()
  } finally {
    await s.drop()
  }
})

test('PostgreSQL: tryVerifyKey and verifyKeyAsync answer from the caches without a round trip', async (t) => {
  if (!(await answers())) return t.skip(`skipped: no PostgreSQL at ${BASE}`)
  const s = await scratch()
  const a = new TokenManager(s.url)
  const b = new TokenManager(s.url)
  try {
    const c = b.createKey({ owner: 'now', scopes: ['read'] })
    // Not yet seen by this process: only a round trip can answer.
    assert.equal(a.tryVerifyKey(c.key, ['read']), null)
    assert.equal((await a.verifyKeyAsync(c.key, ['read'])).valid, true)
    const deadline = Date.now() + 5000
    let now = null
    while (now === null) {
      assert.ok(Date.now() < deadline, 'never cached')
      assert.equal(a.verifyKey(c.key, ['read']).valid, true)
      now = a.tryVerifyKey(c.key, ['read'])
    }
    assert.equal(now.valid, true)
    // Cached: verifyKeyAsync settles within microtasks (no libuv pool trip).
    let settled = false
    const answer = a.verifyKeyAsync(c.key, ['read']).then((r) => {
      settled = true
      return r
    })
    for (let i = 0; i < 5; i++) await null
    assert.equal(settled, true)
    assert.equal((await answer).valid, true)
    // Revoked on the other host: never valid from the cache afterwards.
    b.revokeKey(c.record.id)
    while (true) {
      const v = a.tryVerifyKey(c.key)
      if (v === null || !v.valid) break
      assert.ok(Date.now() < deadline, 'revocation never arrived')
      await new Promise((r) => setTimeout(r, 2))
    }
    assert.equal((await a.verifyKeyAsync(c.key)).reason, 'REVOKED')
  } finally {
    a.close()
    b.close()
    await s.drop()
  }
})
