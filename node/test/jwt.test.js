'use strict'
// JWT through the Node binding: shared vectors, jose-style errors, and
// interoperability with the jose library.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')

const { jwtVerify, jwtSign, JwtVerifier } = require('..')

const JWT_DIR = path.join(__dirname, '..', '..', 'tests', 'vectors', 'jwt')
const NOW = 1_700_000_000
const SECRET = 'irontoken-test-hmac-secret-of-32-bytes!!'

const read = (p) => fs.readFileSync(path.join(JWT_DIR, p), 'utf8')

function keyOf(spec) {
  if (spec.pem) return read(spec.pem)
  if (spec.jwk) return JSON.stringify(spec.jwk)
  if (spec.jwks) return JSON.stringify(spec.jwks)
  return Buffer.from(spec.secret_b64u, 'base64url')
}

function optionsOf(policy) {
  const o = { algorithms: policy.algorithms }
  if (policy.audience) o.audience = policy.audience
  if (policy.issuer) o.issuer = policy.issuer
  if (policy.subject) o.subject = policy.subject
  if (policy.leeway !== undefined) o.clockTolerance = policy.leeway
  if (policy.required) o.requiredClaims = policy.required
  if (policy.require_exp !== undefined) o.requireExp = policy.require_exp
  if (policy.require_sub !== undefined) o.requireSub = policy.require_sub
  if (policy.verify_aud !== undefined) o.verifyAud = policy.verify_aud
  if (policy.verify_iss !== undefined) o.verifyIss = policy.verify_iss
  if (policy.verify_sub !== undefined) o.verifySub = policy.verify_sub
  if (policy.strict_aud !== undefined) o.strictAud = policy.strict_aud
  return o
}

for (const file of ['rfc7515.json', 'attacks.json']) {
  test(`shared JWT vectors: ${file}`, () => {
    const { cases } = JSON.parse(read(file))
    assert.ok(cases.length >= 5)
    for (const c of cases) {
      const run = () => jwtVerify(c.token, keyOf(c.key), { ...optionsOf(c.policy), currentDate: c.now })
      if (c.expect.ok) {
        assert.deepEqual(run().payload, c.expect.claims, c.name)
      } else {
        assert.throws(run, (e) => {
          assert.equal(e.irontokenCode, c.expect.error, `${c.name}: ${e.message}`)
          assert.equal(e.claim, c.expect.claim, `${c.name}: claim`) // data from core
          return true
        })
      }
    }
  })
}

test('errors carry jose codes and ours', () => {
  const token = jwtSign({ sub: 'u', exp: NOW - 1 }, SECRET)
  const cases = [
    [{ algorithms: ['HS256'], currentDate: NOW }, 'ERR_JWT_EXPIRED', 'JWT_EXPIRED'],
    [{ algorithms: ['HS256', 'RS256'], currentDate: NOW }, 'ERR_JOSE_ALG_NOT_ALLOWED', 'JWT_ALG_NOT_ALLOWED'],
    [{ algorithms: ['HS512'], currentDate: NOW }, 'INVALID_KEY_MATERIAL', 'INVALID_KEY_MATERIAL'],
    [{ algorithms: ['HS256'], currentDate: NOW - 100, issuer: 'x' }, 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'JWT_MISSING_CLAIM'],
  ]
  for (const [opts, jose, ours] of cases) {
    assert.throws(() => jwtVerify(token, SECRET, opts), (e) => e.code === jose && e.irontokenCode === ours)
  }
  assert.throws(() => jwtVerify(token, 'x'.repeat(40), { algorithms: ['HS256'], verifyExp: false }), {
    code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  })
  assert.throws(() => jwtVerify(token, SECRET, {}), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => jwtVerify(token, SECRET, { algorithms: ['HS256'], bogus: 1 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => jwtSign({ sub: 'u' }, 'short'), { code: 'INVALID_KEY_MATERIAL' })
})

test('a verifier parses its key once and verifies many tokens and JWS', () => {
  const priv = read('keys/rsa_private.pem')
  const v = new JwtVerifier(read('keys/rsa_public.pem'), { algorithms: ['RS256'], audience: 'api' })
  for (let i = 0; i < 3; i++) {
    const t = jwtSign({ sub: `u${i}`, exp: NOW + 60, aud: 'api' }, priv, { algorithm: 'RS256', kid: 'k' })
    const { payload, protectedHeader } = v.verify(t, { currentDate: new Date(NOW * 1000) })
    assert.equal(payload.sub, `u${i}`)
    assert.equal(protectedHeader.kid, 'k')
  }
  const hv = new JwtVerifier(SECRET, { algorithms: ['HS256'] })
  const jws = hv.verifyJws(jwtSign({ event: 'paid' }, SECRET))
  assert.deepEqual(JSON.parse(jws.payload.toString()), { event: 'paid' })
})

test('interop with jose', async () => {
  const jose = await import('jose')
  const claims = { sub: 'user', exp: NOW + 600, iat: NOW, scope: 'read' }
  const pairs = [
    ['HS256', SECRET, new TextEncoder().encode(SECRET), SECRET],
    ['RS256', read('keys/rsa_private.pem'), null, read('keys/rsa_public.pem')],
    ['ES256', read('keys/ec_p256_private.pem'), null, read('keys/ec_p256_public.pem')],
    ['EdDSA', read('keys/ed25519_private.pem'), null, read('keys/ed25519_public.pem')],
  ]
  for (const [alg, signKey, joseSecret, verifyKey] of pairs) {
    const ours = jwtSign(claims, signKey, { algorithm: alg })
    const joseVerifyKey = joseSecret || crypto.createPublicKey(verifyKey)
    const { payload } = await jose.jwtVerify(ours, joseVerifyKey, { currentDate: new Date(NOW * 1000) })
    assert.deepEqual(payload, claims, alg)
    const joseSignKey = joseSecret || crypto.createPrivateKey(signKey)
    const theirs = await new jose.SignJWT(claims).setProtectedHeader({ alg }).sign(joseSignKey)
    assert.deepEqual(jwtVerify(theirs, verifyKey, { algorithms: [alg], currentDate: NOW }).payload, claims, alg)
  }
})

test('a signer parses its key once and signs many tokens', () => {
  const { JwtSigner } = require('..')
  const signer = new JwtSigner(read('keys/ed25519_private.pem'), { algorithm: 'EdDSA', kid: 'ed-1' })
  const v = new JwtVerifier(read('keys/ed25519_public.pem'), { algorithms: ['EdDSA'] })
  for (let i = 0; i < 3; i++) {
    const t = signer.sign({ sub: `s${i}`, exp: NOW + 60 }, { typ: 'at+jwt' })
    const { payload, protectedHeader } = v.verify(t, { currentDate: NOW })
    assert.equal(payload.sub, `s${i}`)
    assert.deepEqual(protectedHeader, { alg: 'EdDSA', typ: 'at+jwt', kid: 'ed-1' })
  }
  assert.throws(() => new JwtSigner(read('keys/ed25519_private.pem'), { algorithm: 'RS256' }), {
    code: 'ERR_JOSE_ALG_NOT_ALLOWED',
  })
})

test('managed signing keys, JWKS and API key exchange', async () => {
  const { TokenManager } = require('..')
  const jose = await import('jose')
  const tm = new TokenManager(':memory:', { manualClockStart: NOW, masterKey: 'ab'.repeat(32) })
  assert.throws(() => tm.issueJwt({ sub: 'x' }), { code: 'NO_ACTIVE_SIGNING_KEY' })
  const k1 = tm.createSigningKey('EdDSA', { actor: 'ops' })
  assert.equal(k1.status, 'active')
  const token = tm.issueJwt({ sub: 'svc' }, { ttlSeconds: 60 })
  assert.equal(tm.verifyJwt(token, { algorithms: ['EdDSA'] }).payload.sub, 'svc')
  // The exported JWKS works with jose.
  const jwks = jose.createLocalJWKSet(tm.jwks())
  const { payload } = await jose.jwtVerify(token, jwks, { currentDate: new Date(NOW * 1000) })
  assert.equal(payload.sub, 'svc')
  tm.rotateSigningKey({ overlapSeconds: 0 })
  assert.throws(() => tm.verifyJwt(token, { algorithms: ['EdDSA'] }), { code: 'ERR_JWKS_NO_MATCHING_KEY' })
  const api = tm.createKey({ owner: 'svc-billing', scopes: ['read'] })
  const at = tm.exchangeApiKey(api.key, { requiredScopes: ['read'] })
  assert.deepEqual(Object.keys(at).sort(), ['expiresAt', 'keyId', 'owner', 'scopes', 'token'])
  assert.equal(at.keyId, api.record.id)
  assert.equal(tm.exchangeApiKey(Buffer.from(api.key)).keyId, api.record.id) // the raw bytes of a header
  assert.equal(at.expiresAt, tm.verifyJwt(at.token, { algorithms: ['EdDSA'] }).payload.exp)
  assert.equal(tm.verifyJwt(at.token, { algorithms: ['EdDSA'] }).payload.key_id, api.record.id)
  tm.revokeKey(api.record.id)
  assert.throws(() => tm.exchangeApiKey(api.key), { code: 'KEY_REVOKED' })
  const plain = new TokenManager(':memory:')
  assert.throws(() => plain.createSigningKey('ES256'), { code: 'MASTER_KEY_REQUIRED' })
  tm.close()
})

test('RSA key size option', () => {
  const { TokenManager } = require('..')
  const tm = new TokenManager(':memory:', { masterKey: 'cd'.repeat(32), rsaKeyBits: 3072 })
  tm.createSigningKey('RS256')
  assert.equal(Buffer.from(tm.jwks().keys[0].n, 'base64url').length, 384)
  assert.throws(() => new TokenManager(':memory:', { rsaKeyBits: 1024 }), { code: 'INVALID_ARGUMENT' })
})

test('one-shot jwtVerify reuses parsed keys but never another policy or key', () => {
  const other = 'another-hmac-secret-of-at-least-32-bytes'
  const t = jwtSign({ sub: 'u', aud: 'a', exp: NOW + 60 }, SECRET, { algorithm: 'HS256' })
  for (let i = 0; i < 3; i++) {
    assert.equal(jwtVerify(t, SECRET, { algorithms: ['HS256'], audience: 'a', currentDate: NOW }).payload.sub, 'u')
    // Same key, another policy: refused by that policy, not answered from the cache.
    assert.throws(
      () => jwtVerify(t, SECRET, { algorithms: ['HS256'], audience: 'b', currentDate: NOW }),
      (e) => e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    )
    // Same policy, another key: the signature fails.
    assert.throws(
      () => jwtVerify(t, other, { algorithms: ['HS256'], audience: 'a', currentDate: NOW }),
      (e) => e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    )
  }
  // Many distinct keys: the cache stays bounded and every answer is right.
  for (let i = 0; i < 200; i++) {
    const k = `${SECRET}-${i}`
    const tok = jwtSign({ sub: `u${i}`, exp: NOW + 60 }, k, { algorithm: 'HS256' })
    assert.equal(jwtVerify(tok, k, { algorithms: ['HS256'], currentDate: NOW }).payload.sub, `u${i}`)
  }
  // A bad option is still refused on a cached key.
  assert.throws(() => jwtVerify(t, SECRET, { algorithms: ['HS256'], nope: 1 }), (e) => e.code === 'ERR_INVALID_ARGUMENT' || e.code === 'INVALID_ARGUMENT')
})

test('managed signing keys rotate when due, once', () => {
  const { TokenManager } = require('..')
  const tm = new TokenManager(':memory:', { manualClockStart: NOW, masterKey: 'cd'.repeat(32) })
  assert.throws(() => tm.rotateSigningKeyIfDue(86400), { code: 'NOT_FOUND' })
  const first = tm.createSigningKey('ES256')
  assert.equal(tm.rotateSigningKeyIfDue(90 * 86400, { overlapSeconds: 86400 }), null)
  tm.advanceClock(90 * 86400)
  const next = tm.rotateSigningKeyIfDue(90 * 86400, { overlapSeconds: 86400, actor: 'cron' })
  assert.equal(next.status, 'active')
  assert.equal(next.alg, 'ES256')
  assert.equal(tm.rotateSigningKeyIfDue(90 * 86400, { overlapSeconds: 86400 }), null)
  const keys = tm.listSigningKeys()
  assert.deepEqual(keys.map((k) => [k.kid, k.status]), [[first.kid, 'verify_only'], [next.kid, 'active']])
  // camelCase, like every other Node answer.
  assert.deepEqual(Object.keys(keys[0]).sort(), ['alg', 'createdAt', 'kid', 'retiredAt', 'status', 'verifyUntil'])
  assert.equal(keys[0].createdAt, NOW)
  assert.equal(keys[0].verifyUntil, NOW + 91 * 86400)
  assert.equal(keys[1].retiredAt, null)
  assert.throws(() => tm.rotateSigningKeyIfDue(0), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.rotateSigningKeyIfDue(60, { algorithm: 'RS256' }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})
