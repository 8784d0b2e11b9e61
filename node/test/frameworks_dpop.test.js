'use strict'
// requireJwt with { dpop: true } and certificate binding in irontoken/express
// and irontoken/fastify against real servers on loopback (proofs made by
// jose): a DPoP-bound token with its proof, a replayed proof, a stolen token
// with another key, a bound token sent as Bearer, the nonce dance, a
// JwtVerifier with replay, and an mTLS-bound token behind a proxy header.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const express = require('express')
const Fastify = require('fastify')
const { TokenManager, JwtVerifier, jwkThumbprint, certThumbprint } = require('..')
const ex = require('../express.js')
const fy = require('../fastify.js')

const MASTER = '07'.repeat(32)
const KEYS = path.join(__dirname, '..', '..', 'tests/vectors/jwt/keys')
const ath = (t) => crypto.createHash('sha256').update(t).digest('base64url')

async function client() {
  const jose = await import('jose')
  const { privateKey, publicKey } = await jose.generateKeyPair('ES256')
  const jwk = await jose.exportJWK(publicKey)
  return {
    jkt: jwkThumbprint(jwk),
    proof: (htm, htu, token, nonce) =>
      new jose.SignJWT({ htm, htu, ath: ath(token), ...(nonce ? { nonce } : {}) })
        .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk })
        .setJti(crypto.randomUUID())
        .setIssuedAt()
        .sign(privateKey),
  }
}

async function serve(kind, tm) {
  const verifier = new JwtVerifier(JSON.stringify(tm.jwks()), { algorithms: ['EdDSA'] })
  const routes = [
    ['get', '/dpop', { dpop: true, algorithms: ['EdDSA'], scopes: ['read'] }, tm],
    ['post', '/nonce', { dpop: true, algorithms: ['EdDSA'], dpopNonce: () => 'n-7' }, tm],
    ['get', '/verifier', { dpop: true, replay: tm }, verifier],
    ['get', '/bearer', {}, verifier],
    ['get', '/mtls', { algorithms: ['EdDSA'], clientCert: 'x-client-cert' }, tm],
  ]
  if (kind === 'express') {
    const app = express()
    for (const [m, p, o, v] of routes) app[m](p, ex.requireJwt(v, o), (req, res) => res.json({ sub: req.irontoken.sub }))
    const s = await new Promise((resolve) => { const srv = app.listen(0, '127.0.0.1', () => resolve(srv)) })
    return { url: `http://127.0.0.1:${s.address().port}`, stop: () => new Promise((r) => s.close(r)) }
  }
  const app = Fastify()
  for (const [m, p, o, v] of routes) app[m](p, { preHandler: fy.requireJwt(v, o) }, async (request) => ({ sub: request.irontoken.sub }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { url: `http://127.0.0.1:${app.server.address().port}`, stop: () => app.close() }
}

for (const kind of ['express', 'fastify']) {
  test(`${kind}: requireJwt with DPoP and certificate binding`, async () => {
    const tm = new TokenManager(':memory:', { masterKey: MASTER })
    tm.createSigningKey('EdDSA')
    const c = await client()
    const thief = await client()
    const token = tm.issueTokenPair('alice', { scopes: ['read'], dpopJkt: c.jkt }).accessToken
    const { url, stop } = await serve(kind, tm)
    const get = (p, headers, method = 'GET') => fetch(url + p, { method, headers })
    const code = async (r) => (await r.json()).error.code
    try {
      let r = await get('/dpop', { authorization: `DPoP ${token}`, dpop: await c.proof('GET', url + '/dpop', token) })
      assert.equal(r.status, 200)
      assert.deepEqual(await r.json(), { sub: 'alice' })
      const proof = await c.proof('GET', url + '/dpop', token)
      assert.equal((await get('/dpop', { authorization: `DPoP ${token}`, dpop: proof })).status, 200)
      r = await get('/dpop', { authorization: `DPoP ${token}`, dpop: proof })
      assert.equal(r.status, 401)
      assert.match(r.headers.get('www-authenticate'), /error="invalid_dpop_proof"/)
      assert.equal(await code(r), 'DPOP_PROOF_REPLAYED')
      r = await get('/dpop', { authorization: `DPoP ${token}`, dpop: await thief.proof('GET', url + '/dpop', token) })
      assert.equal(await code(r), 'DPOP_BINDING_MISMATCH')
      r = await get('/dpop', { authorization: `DPoP ${token}`, dpop: await c.proof('POST', url + '/dpop', token) })
      assert.equal(await code(r), 'DPOP_PROOF_INVALID')
      r = await get('/dpop', { authorization: `DPoP ${token}` })
      assert.equal(await code(r), 'DPOP_PROOF_INVALID')
      r = await get('/dpop', { authorization: `Bearer ${token}`, dpop: await c.proof('GET', url + '/dpop', token) })
      assert.equal(r.status, 401)
      assert.match(r.headers.get('www-authenticate'), /^DPoP algs=/)
      assert.equal(await code(r), 'MISSING')
      r = await get('/bearer', { authorization: `Bearer ${token}` })
      assert.equal(r.status, 401)
      assert.equal(await code(r), 'DPOP_BINDING_MISMATCH')
      // A JwtVerifier with replay: the same rules.
      const ok = await c.proof('GET', url + '/verifier', token)
      assert.equal((await get('/verifier', { authorization: `DPoP ${token}`, dpop: ok })).status, 200)
      assert.equal(await code(await get('/verifier', { authorization: `DPoP ${token}`, dpop: ok })), 'DPOP_PROOF_REPLAYED')
      assert.equal(await code(await get('/verifier', { authorization: `DPoP ${token}`, dpop: await thief.proof('GET', url + '/verifier', token) })), 'DPOP_BINDING_MISMATCH')
      // The nonce dance.
      r = await get('/nonce', { authorization: `DPoP ${token}`, dpop: await c.proof('POST', url + '/nonce', token) }, 'POST')
      assert.equal(r.status, 401)
      assert.equal(r.headers.get('dpop-nonce'), 'n-7')
      assert.match(r.headers.get('www-authenticate'), /error="use_dpop_nonce"/)
      assert.equal(await code(r), 'DPOP_NONCE_REQUIRED')
      r = await get('/nonce', { authorization: `DPoP ${token}`, dpop: await c.proof('POST', url + '/nonce', token, 'n-7') }, 'POST')
      assert.equal(r.status, 200)

      // Certificate-bound, the certificate from a proxy header.
      const pem = fs.readFileSync(path.join(KEYS, 'rsa_cert.pem'), 'utf8')
      const other = fs.readFileSync(path.join(KEYS, 'client_cert_b.pem'), 'utf8')
      const bound = tm.issueTokenPair('svc', { certThumbprint: certThumbprint(pem) }).accessToken
      r = await get('/mtls', { authorization: `Bearer ${bound}`, 'x-client-cert': encodeURIComponent(pem) })
      assert.equal(r.status, 200)
      for (const headers of [{}, { 'x-client-cert': encodeURIComponent(other) }, { 'x-client-cert': 'garbage' }]) {
        r = await get('/mtls', { authorization: `Bearer ${bound}`, ...headers })
        assert.equal(r.status, 401)
        assert.equal(await code(r), 'MTLS_BINDING_MISMATCH')
      }
      r = await get('/bearer', { authorization: `Bearer ${bound}`, 'x-client-cert': encodeURIComponent(pem) })
      assert.equal(await code(r), 'MTLS_BINDING_MISMATCH')
    } finally {
      await stop()
      tm.close()
    }
  })
}
