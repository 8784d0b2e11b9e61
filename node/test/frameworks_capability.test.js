'use strict'
// requireCapability in irontoken/express and irontoken/fastify against real
// servers on loopback: a tool executor authorizing and charging each call,
// the status codes of every refusal, a revoked parent's child refused.
const test = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const Fastify = require('fastify')
const { TokenManager, attenuate } = require('..')
const ex = require('../express.js')
const fy = require('../fastify.js')

const MASTER = '07'.repeat(32)

async function serve(kind, tm) {
  if (kind === 'express') {
    const app = express()
    app.post('/tools/search', ex.requireCapability(tm, { tool: 'search', costMicros: 100 }), (req, res) =>
      res.json({ keyId: req.irontoken.keyId, remaining: req.irontoken.remainingMicros }),
    )
    app.get('/docs/:doc', ex.requireCapability({ manager: tm, tool: 'read', resource: (req) => req.params.doc }), (req, res) =>
      res.json({ ok: req.irontoken.allowed }),
    )
    const s = await new Promise((resolve) => { const srv = app.listen(0, '127.0.0.1', () => resolve(srv)) })
    return { url: `http://127.0.0.1:${s.address().port}`, stop: () => new Promise((r) => s.close(r)) }
  }
  const app = Fastify()
  app.post('/tools/search', { preHandler: fy.requireCapability(tm, { tool: 'search', costMicros: 100 }) }, async (request) => ({
    keyId: request.irontoken.keyId,
    remaining: request.irontoken.remainingMicros,
  }))
  app.get('/docs/:doc', { preHandler: fy.requireCapability(tm, { tool: 'read', resource: (r) => r.params.doc }) }, async (request) => ({
    ok: request.irontoken.allowed,
  }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { url: `http://127.0.0.1:${app.server.address().port}`, stop: () => app.close() }
}

for (const kind of ['express', 'fastify']) {
  test(`${kind}: requireCapability`, async () => {
    const tm = new TokenManager(':memory:', { masterKey: MASTER })
    const keyId = tm.createKey({ owner: 'acme' }).record.id
    const token = tm.mintCapability(keyId, { tools: ['search', 'read'], ttlSeconds: 600, ceilingMicros: 250 })
    const onlyRead = attenuate(token, { tools: ['read'], resources: ['d1'] })
    const { url, stop } = await serve(kind, tm)
    const call = (method, path, t) => fetch(url + path, { method, headers: t ? { authorization: `Bearer ${t}` } : {} })
    try {
      let r = await call('POST', '/tools/search')
      assert.equal(r.status, 401)
      assert.equal((await r.json()).error.code, 'MISSING')
      r = await call('POST', '/tools/search', token)
      assert.equal(r.status, 200)
      assert.deepEqual(await r.json(), { keyId, remaining: 150 })
      assert.equal((await call('POST', '/tools/search', token)).status, 200)
      r = await call('POST', '/tools/search', token)
      assert.equal(r.status, 429)
      assert.equal((await r.json()).error.code, 'CEILING_EXCEEDED')
      r = await call('POST', '/tools/search', onlyRead)
      assert.equal(r.status, 403)
      assert.equal((await r.json()).error.code, 'TOOL_NOT_ALLOWED')
      assert.equal((await (await call('GET', '/docs/d1', onlyRead)).json()).ok, true)
      r = await call('GET', '/docs/d2', onlyRead)
      assert.equal(r.status, 403)
      assert.equal((await r.json()).error.code, 'CAPABILITY_DENIED')
      r = await call('GET', '/docs/d1', 'garbage')
      assert.equal(r.status, 401)
      assert.equal((await r.json()).error.code, 'CAPABILITY_MALFORMED')
      tm.revokeCapability(token)
      r = await call('GET', '/docs/d1', onlyRead)
      assert.equal(r.status, 401)
      const body = await r.text()
      assert.match(body, /CAPABILITY_REVOKED/)
      assert.ok(!body.includes(onlyRead))
      assert.equal((await fetch(`${url}/docs/d1?access_token=${onlyRead}`)).status, 400)
    } finally {
      await stop()
      tm.close()
    }
  })
}

test('requireCapability refuses bad options at setup', () => {
  const tm = new TokenManager(':memory:', { masterKey: MASTER })
  assert.throws(() => ex.requireCapability(tm, {}), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => ex.requireCapability(tm, { tool: 'x', nope: 1 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => fy.requireCapability({ tool: 'x' }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})
