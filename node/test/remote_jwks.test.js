'use strict'
// createRemoteJWKSet against a real HTTP server on 127.0.0.1, and jose's
// own createRemoteJWKSet verifying the same tokens.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const crypto = require('node:crypto')

const { jwtVerify, jwtSign, createRemoteJWKSet, errors } = require('..')

const KEYS = path.join(__dirname, '..', '..', 'tests', 'vectors', 'jwt', 'keys')
const NOW = 1_700_000_000

function jwk(name, kid) {
  const pub = crypto.createPublicKey(fs.readFileSync(path.join(KEYS, `${name}_public.pem`)))
  return { ...pub.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }
}

function token(name, kid) {
  const priv = fs.readFileSync(path.join(KEYS, `${name}_private.pem`))
  return jwtSign({ sub: 'consumer-1', exp: NOW + 60 }, priv, { algorithm: 'RS256', kid })
}

async function provider() {
  const state = { status: 200, body: '{}', delay: 0, hits: 0 }
  const server = http.createServer((req, res) => {
    state.hits++
    setTimeout(() => {
      res.writeHead(state.status, { 'content-type': 'application/json' })
      res.end(state.body)
    }, state.delay)
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${server.address().port}/jwks.json`
  return { state, url, close: () => new Promise((r) => server.close(r)) }
}

test('rotation, cache and a flood of unknown kids', async () => {
  const p = await provider()
  try {
    p.state.body = JSON.stringify({ keys: [jwk('rsa', 'k1')] })
    const JWKS = createRemoteJWKSet(p.url, { cooldownDuration: 1000 })
    const { payload, protectedHeader } = await jwtVerify(token('rsa', 'k1'), JWKS, { algorithms: ['RS256'], currentDate: NOW })
    assert.equal(payload.sub, 'consumer-1')
    assert.equal(protectedHeader.kid, 'k1')
    await jwtVerify(token('rsa', 'k1'), JWKS, { algorithms: ['RS256'], currentDate: NOW })
    assert.equal(p.state.hits, 1)
    p.state.body = JSON.stringify({ keys: [jwk('rsa', 'k1'), jwk('attacker_rsa', 'k2')] })
    await new Promise((r) => setTimeout(r, 1050)) // the cooldown (at least 1 s) since the first fetch
    await jwtVerify(token('attacker_rsa', 'k2'), JWKS, { algorithms: ['RS256'], currentDate: NOW })
    assert.equal(p.state.hits, 2)
    const slow = createRemoteJWKSet(p.url, { cooldownDuration: 60_000 })
    for (let i = 0; i < 20; i++) {
      await assert.rejects(jwtVerify(token('rsa', 'unknown'), slow, { algorithms: ['RS256'], currentDate: NOW }), errors.JWKSNoMatchingKey)
    }
    assert.equal(slow.fetchCount, 1)
    // jose's own remote set verifies the same token from the same server.
    const jose = await import('jose')
    const theirs = jose.createRemoteJWKSet(new URL(p.url))
    const verified = await jose.jwtVerify(token('rsa', 'k1'), theirs, { currentDate: new Date(NOW * 1000) })
    assert.equal(verified.payload.sub, 'consumer-1')
  } finally {
    await p.close()
  }
})

test('a published secret in a remote set verifies nothing; the cooldown has a floor', async () => {
  const p = await provider()
  try {
    const secret = Buffer.alloc(32, 's')
    p.state.body = JSON.stringify({ keys: [jwk('rsa', 'k1'), { kty: 'oct', kid: 'k1', k: secret.toString('base64url') }] })
    const JWKS = createRemoteJWKSet(p.url)
    const forged = jwtSign({ sub: 'admin', exp: NOW + 60 }, secret, { algorithm: 'HS256', kid: 'k1' })
    await assert.rejects(jwtVerify(forged, JWKS, { algorithms: ['RS256', 'HS256'], currentDate: NOW }))
    const { payload } = await jwtVerify(token('rsa', 'k1'), JWKS, { algorithms: ['RS256', 'HS256'], currentDate: NOW })
    assert.equal(payload.sub, 'consumer-1')
    assert.throws(() => createRemoteJWKSet(p.url, { cooldownDuration: 0 }), { code: 'INVALID_ARGUMENT' })
    assert.throws(() => createRemoteJWKSet(p.url, { cooldownDuration: 999 }), { code: 'INVALID_ARGUMENT' })
  } finally {
    await p.close()
  }
})

test('slow, oversized and failing answers reject with a JOSEError', async () => {
  const p = await provider()
  try {
    p.state.body = JSON.stringify({ keys: [jwk('rsa', 'k1')] })
    p.state.delay = 600
    const t0 = Date.now()
    await assert.rejects(jwtVerify(token('rsa', 'k1'), createRemoteJWKSet(p.url, { timeoutDuration: 150 }), { algorithms: ['RS256'] }), (e) => {
      assert.ok(e instanceof errors.JOSEError)
      assert.equal(e.irontokenCode, 'JWKS_FETCH_FAILED')
      return true
    })
    assert.ok(Date.now() - t0 < 550)
    p.state.delay = 0
    p.state.body = JSON.stringify({ keys: [], pad: 'x'.repeat(4096) })
    await assert.rejects(createRemoteJWKSet(p.url, { maxBytes: 1024 }).reload(), { irontokenCode: 'JWKS_FETCH_FAILED' })
    p.state.body = JSON.stringify({ keys: [jwk('rsa', 'k1')] })
    p.state.status = 500
    await assert.rejects(createRemoteJWKSet(p.url).reload(), { code: 'ERR_JOSE_GENERIC' })
  } finally {
    await p.close()
  }
})

test('URLs and options are checked', () => {
  for (const bad of ['http://idp.example/jwks', 'ftp://x/y', 'nope']) {
    assert.throws(() => createRemoteJWKSet(bad), { code: 'INVALID_ARGUMENT' })
  }
  createRemoteJWKSet('http://idp.example/jwks', { allowHttp: true })
  createRemoteJWKSet(new URL('https://idp.example/jwks'))
  for (const o of [{ timeoutDuration: -1 }, { cacheMaxAge: NaN }, { bogus: 1 }, { headers: { 'x-a': 'b\r\nc' } }]) {
    assert.throws(() => createRemoteJWKSet('https://idp.example/jwks', o), { code: 'INVALID_ARGUMENT' }, JSON.stringify(o))
  }
})
