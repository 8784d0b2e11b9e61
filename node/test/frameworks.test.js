'use strict'
// irontoken/express and irontoken/fastify against real servers on loopback,
// hit with fetch: every way a credential can be wrong, the status codes and
// headers, and nothing echoing the credential.
const test = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const Fastify = require('fastify')
const { TokenManager, JwtVerifier, jwtSign } = require('..')
const ex = require('../express.js')
const fy = require('../fastify.js')

const SECRET = Buffer.from('node-frameworks-secret-32-bytes!!')

function keys() {
  const tm = new TokenManager(':memory:')
  const good = tm.createKey({
    owner: 'alice',
    scopes: ['read'],
    rateLimits: [{ name: 'per-second', count: 100, periodMs: 1000 }],
  })
  tm.setQuota({ subject: good.record.id, metric: 'requests', period: 'day', limit: 3 })
  const revoked = tm.createKey({ owner: 'bob', scopes: ['read'] })
  tm.revokeKey(revoked.record.id)
  const limited = tm.createKey({ owner: 'carol', scopes: ['read'], rateLimits: [{ name: 'burst', count: 2, periodMs: 60000 }] })
  const stranger = new TokenManager(':memory:').createKey({ owner: 'eve', scopes: ['read'] }).key
  const disabled = tm.createKey({ owner: 'dan', scopes: ['read'] })
  tm.disableKey(disabled.record.id)
  const expired = tm.createKey({ owner: 'old', scopes: ['read'], expiresAt: Math.floor(Date.now() / 1000) + 1 })
  return { tm, good: good.key, revoked: revoked.key, limited: limited.key, stranger, disabled: disabled.key, expired: expired.key }
}

async function expressApp(tm) {
  const app = express()
  const verifier = new JwtVerifier(SECRET, { algorithms: ['HS256'], audience: 'api' })
  app.get('/items', ex.requireApiKey(tm, { scopes: ['read'], quota: { requests: 1 } }), (req, res) =>
    res.json({ owner: req.irontoken.owner }),
  )
  app.get('/limited', ex.requireApiKey(tm, { scopes: ['read'] }), (req, res) => res.json({ ok: true }))
  app.get('/health', (req, res) => res.json({ ok: true }))
  app.get('/admin', ex.requireApiKey(tm, { scopes: ['admin'], header: 'X-Admin-Key' }), (req, res) => res.json({}))
  app.get('/me', ex.requireJwt(verifier, { scopes: ['profile'] }), (req, res) => res.json({ sub: req.irontoken.sub }))
  return listen((port) => new Promise((resolve) => { const s = app.listen(port, '127.0.0.1', () => resolve(s)) }), (s) => s.close())
}

async function fastifyApp(tm) {
  const app = Fastify({ logger: false })
  const verifier = new JwtVerifier(SECRET, { algorithms: ['HS256'], audience: 'api' })
  app.get('/items', { preHandler: fy.requireApiKey(tm, { scopes: ['read'], quota: { requests: 1 } }) }, async (request) => ({
    owner: request.irontoken.owner,
  }))
  app.register(async (scope) => {
    scope.register(fy, { manager: tm, scopes: ['read'] })
    scope.get('/limited', async () => ({ ok: true }))
  })
  app.get('/health', async () => ({ ok: true })) // outside the plugin's scope: not guarded
  app.get('/admin', { preHandler: fy.requireApiKey(tm, { scopes: ['admin'], header: 'X-Admin-Key' }) }, async () => ({}))
  app.get('/me', { preHandler: fy.requireJwt(verifier, { scopes: ['profile'] }) }, async (request) => ({ sub: request.irontoken.sub }))
  return listen(async (port) => { await app.listen({ port, host: '127.0.0.1' }); return app.server }, () => app.close())
}

async function listen(start, stop) {
  const server = await start(0)
  return { base: `http://127.0.0.1:${server.address().port}`, stop: () => stop(server) }
}

for (const [name, make] of [['express', expressApp], ['fastify', fastifyApp]]) {
  test(`${name}: API keys — status codes, headers, and no key in any answer`, async () => {
    const k = keys()
    const app = await make(k.tm)
    const seen = []
    const get = async (path, headers = {}) => {
      const r = await fetch(app.base + path, { headers })
      const text = await r.text()
      seen.push(text + JSON.stringify([...r.headers]))
      return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null }
    }
    try {
      let r = await get('/health')
      assert.equal(r.status, 200)
      r = await get('/items')
      assert.equal(r.status, 401)
      assert.equal(r.body.error.code, 'MISSING')
      assert.equal(r.headers.get('www-authenticate'), 'ApiKey header="X-API-Key"')
      await new Promise((r) => setTimeout(r, 2100 - (Date.now() % 1000))) // the expired key's second passes
      for (const [key, code] of [
        ['garbage', 'MALFORMED'],
        [k.stranger, 'NOT_FOUND'],
        [k.revoked, 'REVOKED'],
        [k.disabled, 'DISABLED'],
        [k.expired, 'EXPIRED'],
      ]) {
        r = await get('/items', { 'X-API-Key': key })
        assert.equal(r.status, 401, code)
        assert.equal(r.body.error.code, code)
        assert.match(r.headers.get('www-authenticate'), /error="invalid_key"/)
      }
      r = await get('/admin', { 'X-Admin-Key': k.good })
      assert.equal(r.status, 403)
      assert.match(r.headers.get('www-authenticate'), /scope="admin"/)
      for (let i = 0; i < 3; i++) {
        r = await get('/items', { 'X-API-Key': k.good })
        assert.equal(r.status, 200)
        assert.deepEqual(r.body, { owner: 'alice' })
      }
      assert.equal(r.headers.get('ratelimit-policy'), '"per-second";q=100;w=1')
      assert.match(r.headers.get('ratelimit'), /^"per-second";r=\d+;t=\d+$/)
      r = await get('/items', { 'X-API-Key': k.good }) // quota of 3 spent
      assert.equal(r.status, 429)
      assert.equal(r.body.error.code, 'USAGE_EXCEEDED')
      assert.ok(Number(r.headers.get('retry-after')) > 0)
      const codes = []
      for (let i = 0; i < 3; i++) {
        r = await get('/limited', { 'X-API-Key': k.limited })
        codes.push(r.status)
      }
      assert.deepEqual(codes, [200, 200, 429])
      assert.equal(r.body.error.code, 'RATE_LIMITED')
      assert.ok(Number(r.headers.get('retry-after')) >= 1)
      assert.equal(r.headers.get('ratelimit-policy'), '"burst";q=2;w=60')
      for (const text of seen) {
        for (const secret of [k.good, k.revoked, k.limited, k.stranger, k.disabled, k.expired]) {
          assert.ok(!text.includes(secret), text)
        }
      }
    } finally {
      await app.stop()
      k.tm.close()
    }
  })

  test(`${name}: a credential in the query string is 400; a fail-open answer sends no RateLimit header`, async () => {
    const k = keys()
    const app = await make(k.tm)
    try {
      const now = Math.floor(Date.now() / 1000)
      const jwt = jwtSign({ aud: 'api', sub: 'a', exp: now + 60, scope: 'profile' }, SECRET, { algorithm: 'HS256' })
      for (const [path, headers] of [
        [`/items?api_key=${k.good}`, {}],
        [`/items?x-api-key=whatever`, { 'X-API-Key': k.good }],
        [`/items?q=${k.good}`, { 'X-API-Key': k.good }],
        [`/items?token=abc`, { 'X-API-Key': k.good }],
        [`/me?access_token=${jwt}`, { Authorization: `Bearer ${jwt}` }],
        [`/me?x=${jwt}`, { Authorization: `Bearer ${jwt}` }],
      ]) {
        const r = await fetch(app.base + path, { headers })
        const text = await r.text()
        assert.equal(r.status, 400, path)
        assert.equal(JSON.parse(text).error.code, 'CREDENTIAL_IN_QUERY')
        assert.ok(!text.includes(k.good) && !text.includes(jwt))
      }
      // Other parameters are fine.
      const r = await fetch(app.base + '/items?page=2&sort=name', { headers: { 'X-API-Key': k.good } })
      assert.equal(r.status, 200)
    } finally {
      await app.stop()
      k.tm.close()
    }
    // Redis down with fail-open: allowed, and no made-up "r=0;t=0".
    const tm = new TokenManager(':memory:', { rateLimitStore: 'redis://127.0.0.1:1', rateLimitFailOpen: true, rateLimitTimeoutMs: 200 })
    const good = tm.createKey({ owner: 'alice', scopes: ['read'], rateLimits: [{ name: 'per-second', count: 100, periodMs: 1000 }] })
    const degraded = await make(tm)
    try {
      const r = await fetch(degraded.base + '/limited', { headers: { 'X-API-Key': good.key } })
      assert.equal(r.status, 200)
      assert.equal(r.headers.get('ratelimit'), null)
      assert.equal(tm.drainEvents().filter((e) => e.kind === 'rate_limit_fail_open').length, 1)
    } finally {
      await degraded.stop()
      tm.close()
    }
  })

  test(`${name}: Bearer JWTs — good, expired, forged, missing scope`, async () => {
    const k = keys()
    const app = await make(k.tm)
    const now = Math.floor(Date.now() / 1000)
    const sign = (claims, key = SECRET) => jwtSign({ aud: 'api', ...claims }, key, { algorithm: 'HS256' })
    try {
      const call = async (token) => {
        const r = await fetch(app.base + '/me', { headers: token ? { Authorization: `Bearer ${token}` } : {} })
        return { status: r.status, headers: r.headers, body: await r.json() }
      }
      let r = await call(sign({ sub: 'alice', exp: now + 60, scope: 'profile email' }))
      assert.equal(r.status, 200)
      assert.deepEqual(r.body, { sub: 'alice' })
      r = await call(null)
      assert.equal(r.status, 401)
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="api"')
      for (const [token, code] of [
        [sign({ sub: 'a', exp: now - 60, scope: 'profile' }), 'JWT_EXPIRED'],
        [sign({ sub: 'm', exp: now + 60, scope: 'profile' }, Buffer.alloc(33, 1)), 'JWT_BAD_SIGNATURE'],
        ['not.a.jwt', null],
      ]) {
        r = await call(token)
        assert.equal(r.status, 401, JSON.stringify(r.body))
        assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/)
        if (code) assert.equal(r.body.error.code, code)
      }
      r = await call(sign({ sub: 'b', exp: now + 60 }))
      assert.equal(r.status, 403)
      assert.match(r.headers.get('www-authenticate'), /insufficient_scope/)
      // Only string entries of scp/scope count: [["profile"]] is not "profile".
      for (const odd of [[['profile']], [{ toString: 'profile' }], [1, null]]) {
        r = await call(sign({ sub: 'e', exp: now + 60, scp: odd }))
        assert.equal(r.status, 403, JSON.stringify(odd))
      }
      r = await call(sign({ sub: 'e', exp: now + 60, scp: [['x'], 'profile'] }))
      assert.equal(r.status, 200)
    } finally {
      await app.stop()
      k.tm.close()
    }
  })
}

test('bad adapter options are INVALID_ARGUMENT at setup, not at the first request', () => {
  const tm = new TokenManager(':memory:')
  assert.throws(() => ex.requireApiKey(tm, { scope: ['read'] }), { code: 'INVALID_ARGUMENT' })
  ex.requireApiKey(tm, { refuseQueryCredentials: false })
  assert.throws(() => fy.requireApiKey({}, {}), { code: 'INVALID_ARGUMENT' })
  const verifier = new JwtVerifier(SECRET, { algorithms: ['HS256'] })
  assert.throws(() => ex.requireJwt(verifier, { audience: 'api' }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('express requireJwt over a remote JWKS: good 200, forged 401, identity provider down 503', async () => {
  const http = require('node:http')
  const crypto = require('node:crypto')
  const { createRemoteJWKSet } = require('..')
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  let status = 200
  const body = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }] })
  const idp = http.createServer((req, res) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(body))
  await new Promise((r) => idp.listen(0, '127.0.0.1', r))
  const jwksUrl = `http://127.0.0.1:${idp.address().port}/jwks.json`
  const app = express()
  const guard = (set) => ex.requireJwt(set, { algorithms: ['ES256'], audience: 'api' })
  app.get('/me', guard(createRemoteJWKSet(jwksUrl)), (req, res) => res.json({ sub: req.irontoken.sub }))
  app.get('/me2', guard(createRemoteJWKSet(jwksUrl)), (req, res) => res.json({}))
  const server = app.listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  const base = `http://127.0.0.1:${server.address().port}`
  const now = Math.floor(Date.now() / 1000)
  const sign = (key) => jwtSign({ sub: 'alice', aud: 'api', exp: now + 60 }, key, { algorithm: 'ES256', kid: 'k1' })
  const call = (path, token) => fetch(base + path, { headers: { Authorization: `Bearer ${token}` } })
  try {
    let r = await call('/me', sign(privateKey))
    assert.equal(r.status, 200)
    assert.deepEqual(await r.json(), { sub: 'alice' })
    r = await call('/me', sign(other))
    assert.equal(r.status, 401)
    status = 500 // a fresh set (never fetched) against a failing identity provider
    r = await call('/me2', sign(privateKey))
    assert.equal(r.status, 503, await r.text())
    assert.equal(r.headers.get('retry-after'), '1')
  } finally {
    server.close()
    idp.close()
  }
})

test('recordLlmUsage through express and fastify: the request key, its request id once, nothing without a guard', async () => {
  const tm = new TokenManager(':memory:')
  const created = tm.createKey({ owner: 'alice', scopes: ['chat'] })
  const app = express()
  app.post('/chat', ex.requireApiKey(tm, { scopes: ['chat'] }), async (req, res, next) => {
    try {
      const counted = await ex.recordLlmUsage(tm, req, { model: 'gpt-4o', promptTokens: 12, completionTokens: 30, costMicros: 450 })
      res.json({ counted })
    } catch (e) { next(e) }
  })
  app.post('/unguarded', async (req, res) => {
    try { await ex.recordLlmUsage(tm, req, { model: 'gpt-4o' }); res.json({}) } catch (e) { res.status(400).json({ code: e.code }) }
  })
  const fapp = Fastify({ logger: false })
  fapp.post('/chat', { preHandler: fy.requireApiKey(tm, { scopes: ['chat'] }) }, async (request) => ({
    counted: await fy.recordLlmUsage(tm, request, { model: 'claude-3', promptTokens: 5, completionTokens: 7, requestIdHeader: 'X-Trace' }),
  }))
  const e = await listen((port) => new Promise((resolve) => { const s = app.listen(port, '127.0.0.1', () => resolve(s)) }), (s) => s.close())
  const f = await listen(async (port) => { await fapp.listen({ port, host: '127.0.0.1' }); return fapp.server }, () => fapp.close())
  const post = async (base, path, headers) => {
    const r = await fetch(base + path, { method: 'POST', headers: { 'X-API-Key': created.key, ...headers } })
    return { status: r.status, body: await r.json() }
  }
  try {
    assert.deepEqual((await post(e.base, '/chat', { 'X-Request-ID': 'req-1' })).body, { counted: true })
    assert.deepEqual((await post(e.base, '/chat', { 'X-Request-ID': 'req-1' })).body, { counted: false }) // a retry counts once
    assert.deepEqual((await post(e.base, '/chat', { 'X-Request-ID': 'x'.repeat(200) })).body, { counted: true }) // not an id: a new request
    assert.deepEqual((await post(e.base, '/chat', {})).body, { counted: true })
    assert.deepEqual((await post(f.base, '/chat', { 'X-Trace': 't-1' })).body, { counted: true })
    assert.deepEqual((await post(f.base, '/chat', { 'X-Trace': 't-1' })).body, { counted: false })
    const r = await post(e.base, '/unguarded', {})
    assert.deepEqual(r, { status: 400, body: { code: 'INVALID_ARGUMENT' } })
    const [total] = tm.usageSummary({ keyId: created.record.id })
    assert.equal(total.requests, 4)
    assert.equal(total.promptTokens, 3 * 12 + 5)
    assert.equal(total.completionTokens, 3 * 30 + 7)
    assert.equal(total.costMicros, 3 * 450)
    await assert.rejects(ex.recordLlmUsage(tm, { headers: {}, irontoken: created.record }, { model: 'm', tokens: 1 }), { code: 'INVALID_ARGUMENT' })
  } finally {
    await e.stop()
    await f.stop()
    tm.close()
  }
})

test('LLM routes: the model and tokens come from the request (express and fastify), refusals consume nothing, recordLlmUsage settles', async () => {
  const tm = new TokenManager(':memory:', { manualClockStart: 1_700_000_000 })
  const created = tm.createKey({
    owner: 'erin',
    models: ['gpt-4o*'],
    maxTokensPerRequest: 800,
    rateLimits: [{ name: 'tpm', count: 1000, periodMs: 60_000, unit: 'tokens' }],
  })
  const left = () => tm.rateLimit(created.record.id, created.record.rateLimits, { peek: true, cost: 0 }).limits[0].remaining
  const app = express()
  app.use(express.json())
  const guard = { model: 'body', tokens: 'body' }
  app.post('/v1/chat/completions', ex.requireApiKey(tm, guard), async (req, res, next) => {
    try {
      // The "model" answered with 50 + 50 tokens, whatever max_tokens said.
      await ex.recordLlmUsage(tm, req, { model: req.body.model, promptTokens: 50, completionTokens: 50 })
      res.json({ model: req.body.model })
    } catch (e) { next(e) }
  })
  const raw = express() // no body parser: fails closed
  raw.post('/v1/chat/completions', ex.requireApiKey(tm, guard), (req, res) => res.json({}))
  const fapp = Fastify({ logger: false })
  fapp.post('/v1/chat/completions', { preHandler: fy.requireApiKey(tm, { model: (r) => r.body.model, tokens: 'body' }) }, async (request) => {
    await fy.recordLlmUsage(tm, request, { model: request.body.model, promptTokens: 50, completionTokens: 50 })
    return { model: request.body.model }
  })
  const start = (a) => listen((port) => new Promise((resolve) => { const s = a.listen(port, '127.0.0.1', () => resolve(s)) }), (s) => s.close())
  const e = await start(app)
  const r = await start(raw)
  const f = await listen(async (port) => { await fapp.listen({ port, host: '127.0.0.1' }); return fapp.server }, () => fapp.close())
  const post = async (base, body) => {
    const res = await fetch(base + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'X-API-Key': created.key, 'Content-Type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
    return { status: res.status, body: await res.json(), headers: res.headers }
  }
  try {
    let got = await post(e.base, { model: 'gpt-4o-mini', max_tokens: 600, messages: [] })
    assert.deepEqual([got.status, got.body], [200, { model: 'gpt-4o-mini' }])
    assert.equal(left(), 900, '600 declared, 100 used: settled')
    got = await post(e.base, { model: 'claude-3-opus', max_tokens: 10 })
    assert.deepEqual([got.status, got.body.error.code], [403, 'MODEL_NOT_ALLOWED'])
    got = await post(f.base, { model: 'claude-3-opus', max_tokens: 10 })
    assert.deepEqual([got.status, got.body.error.code], [403, 'MODEL_NOT_ALLOWED'])
    got = await post(e.base, { model: 'gpt-4o', max_completion_tokens: 801 })
    assert.deepEqual([got.status, got.body.error.code], [413, 'REQUEST_TOO_LARGE'])
    assert.equal(left(), 900, 'refusals consume nothing')
    for (const bad of [{ max_tokens: 10 }, { model: 'gpt-4o', max_tokens: -5 }, { model: 'gpt 4o' },
      { model: 'gpt-4o', max_tokens: 2 ** 60 }, { model: 'gpt-4o', max_tokens: true }, { model: 'gpt-4o', max_tokens: 1.5 }]) {
      got = await post(e.base, bad)
      assert.deepEqual([got.status, got.body.error.code], [400, 'INVALID_ARGUMENT'], JSON.stringify(bad))
    }
    got = await post(r.base, { model: 'gpt-4o' })
    assert.deepEqual([got.status, got.body.error.code], [400, 'INVALID_ARGUMENT'], 'no body parser: refused, not waved through')
    got = await post(f.base, { model: 'gpt-4o', max_tokens: 800 })
    assert.deepEqual([got.status, got.body], [200, { model: 'gpt-4o' }])
    assert.equal(left(), 800)
    assert.equal((await post(e.base, { model: 'gpt-4o', max_tokens: 800 })).status, 200)
    got = await post(e.base, { model: 'gpt-4o', max_tokens: 800 })
    assert.deepEqual([got.status, got.body.error.code], [429, 'RATE_LIMITED'])
    assert.ok(got.headers.get('retry-after'))
    assert.throws(() => ex.requireApiKey(tm, { model: 'header' }), { code: 'INVALID_ARGUMENT' })
  } finally {
    await e.stop()
    await r.stop()
    await f.stop()
    tm.close()
  }
})
