'use strict'
// Key material judged by content: the shared key vectors (every form as a
// Buffer and as a string), KeyObjects, jose-style options and error classes.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')

const { jwtVerify, jwtSign, JwtVerifier, JwtSigner, errors } = require('..')

const JWT_DIR = path.join(__dirname, '..', '..', 'tests', 'vectors', 'jwt')
const doc = JSON.parse(fs.readFileSync(path.join(JWT_DIR, 'keys.json'), 'utf8'))

function runCase(c, material) {
  if (c.use === 'verify') {
    const { payload } = jwtVerify(c.token, material, { algorithms: c.algorithms, currentDate: doc.now })
    assert.deepEqual(payload, doc.claims, c.name)
    return
  }
  const token = jwtSign(doc.claims, material, { algorithm: c.alg })
  const vk = c.verify_pem ? fs.readFileSync(path.join(JWT_DIR, c.verify_pem)) : material
  assert.deepEqual(jwtVerify(token, vk, { algorithms: [c.alg], currentDate: doc.now }).payload, doc.claims, c.name)
}

test('shared key-material vectors, as Buffer and as string', () => {
  assert.ok(doc.cases.length >= 100)
  let runs = 0
  for (const c of doc.cases) {
    const bytes = Buffer.from(c.key_hex, 'hex')
    const forms = c.text ? [bytes, bytes.toString('utf8')] : [bytes]
    for (const material of forms) {
      runs++
      if (c.expect === 'ok') {
        runCase(c, material)
      } else {
        assert.throws(() => runCase(c, material), (e) => {
          assert.equal(e.irontokenCode, c.expect, `${c.name} (${typeof material}): ${e.message}`)
          assert.ok(!e.message.includes('BEGIN'), c.name)
          return true
        })
      }
    }
  }
  assert.ok(runs > doc.cases.length)
})

test('KeyObjects, Uint8Array secrets and JWK objects work as jose takes them', () => {
  const read = (p) => fs.readFileSync(path.join(JWT_DIR, p))
  const claims = { sub: 'u', exp: doc.now + 60 }
  const priv = crypto.createPrivateKey(read('keys/rsa_private.pem'))
  const pub = crypto.createPublicKey(read('keys/rsa_public.pem'))
  const token = jwtSign(claims, priv, { algorithm: 'RS256' })
  assert.deepEqual(jwtVerify(token, pub, { algorithms: ['RS256'], currentDate: doc.now }).payload, claims)
  assert.deepEqual(jwtVerify(Buffer.from(token), pub.export({ format: 'jwk' }), { algorithms: 'RS256', currentDate: doc.now }).payload, claims)
  const secret = new TextEncoder().encode('x'.repeat(32))
  const hs = jwtSign(claims, crypto.createSecretKey(Buffer.from(secret)))
  assert.equal(jwtVerify(hs, secret, { algorithms: ['HS256'], currentDate: doc.now }).payload.sub, 'u')
  // The RS/HS confusion through a KeyObject or Buffer of the public key.
  const der = pub.export({ type: 'spki', format: 'der' })
  const forged = crypto.createHmac('sha256', der)
  const [h, p] = jwtSign(claims, 'y'.repeat(32)).split('.')
  const attack = `${h}.${p}.${forged.update(`${h}.${p}`).digest('base64url')}`
  for (const key of [pub, der, read('keys/rsa_public.pem')]) {
    assert.throws(() => jwtVerify(attack, key, { algorithms: ['HS256'], currentDate: doc.now }), { irontokenCode: 'INVALID_KEY_MATERIAL' })
    assert.throws(() => new JwtVerifier(key, { algorithms: ['RS256', 'HS256'] }), errors.JOSEAlgNotAllowed)
    assert.throws(() => new JwtSigner(key, { algorithm: 'HS256' }), { code: 'INVALID_KEY_MATERIAL' })
  }
})

test('clockTolerance as jose spells it, and jose error classes', () => {
  const secret = 's'.repeat(32)
  const token = jwtSign({ sub: 'u', exp: doc.now }, secret)
  for (const tol of [90, '90s', '2m', '1.5 minutes', '1h', '1 day']) {
    assert.equal(jwtVerify(token, secret, { algorithms: ['HS256'], clockTolerance: tol, currentDate: doc.now + 60 }).payload.sub, 'u', String(tol))
  }
  for (const bad of ['soon', -1, Infinity, NaN, '5 parsecs']) {
    assert.throws(() => jwtVerify(token, secret, { algorithms: ['HS256'], clockTolerance: bad }), { code: 'INVALID_ARGUMENT' }, String(bad))
  }
  assert.throws(() => jwtVerify(token, secret, { algorithms: ['HS256'], currentDate: doc.now + 5 }), (e) => {
    assert.ok(e instanceof errors.JWTExpired && e instanceof errors.JOSEError && e instanceof Error)
    assert.equal(e.code, 'ERR_JWT_EXPIRED')
    assert.equal(e.irontokenCode, 'JWT_EXPIRED')
    assert.equal(e.claim, 'exp')
    return true
  })
  const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BA' : 'AA')
  assert.throws(() => jwtVerify(tampered, secret, { algorithms: ['HS256'], currentDate: doc.now - 5 }), errors.JWSSignatureVerificationFailed)
  assert.throws(() => jwtVerify('a.b', secret, { algorithms: ['HS256'] }), errors.JWTInvalid)
  // sub is not required by default (as in jose): asked for, its absence is a claim failure.
  assert.equal(jwtVerify(jwtSign({ exp: doc.now + 9 }, secret), secret, { algorithms: ['HS256'], currentDate: doc.now }).payload.sub, undefined)
  assert.throws(() => jwtVerify(jwtSign({ exp: doc.now + 9 }, secret), secret, { algorithms: ['HS256'], currentDate: doc.now, requireSub: true }), (e) => {
    assert.ok(e instanceof errors.JWTClaimValidationFailed)
    assert.equal(e.reason, 'missing')
    assert.equal(e.claim, 'sub')
    return true
  })
  // The claim as jose names it, for each claim check.
  const claimed = jwtSign({ sub: 'u', exp: doc.now + 60, iss: 'a', aud: 'x', nbf: doc.now + 30 }, secret)
  for (const [opts, claim] of [[{ issuer: 'b' }, 'iss'], [{ audience: 'y' }, 'aud'], [{ subject: 'v' }, 'sub'], [{}, 'nbf']]) {
    const o = { algorithms: ['HS256'], currentDate: doc.now + 40, audience: 'x', ...opts }
    if (claim === 'nbf') o.currentDate = doc.now
    assert.throws(() => jwtVerify(claimed, secret, o), (e) => e instanceof errors.JWTClaimValidationFailed && e.claim === claim, claim)
  }
})

test('jose tokens verify with Buffer keys; odd key types are INVALID_ARGUMENT', async () => {
  const jose = await import('jose')
  const read = (p) => fs.readFileSync(path.join(JWT_DIR, p))
  const claims = { sub: 'u', exp: doc.now + 60 }
  for (const [alg, name] of [['RS256', 'rsa'], ['ES256', 'ec_p256'], ['EdDSA', 'ed25519']]) {
    const theirs = await new jose.SignJWT(claims).setProtectedHeader({ alg }).sign(crypto.createPrivateKey(read(`keys/${name}_private.pem`)))
    const pubDer = crypto.createPublicKey(read(`keys/${name}_public.pem`)).export({ type: 'spki', format: 'der' })
    for (const key of [read(`keys/${name}_public.pem`), pubDer]) {
      assert.deepEqual(jwtVerify(theirs, key, { algorithms: [alg], currentDate: doc.now }).payload, claims, alg)
    }
  }
  for (const bad of [12345, null, true, () => 1]) {
    assert.throws(() => jwtVerify('a.b.c', bad, { algorithms: ['HS256'] }), (e) => ['INVALID_ARGUMENT', 'INVALID_KEY_MATERIAL'].includes(e.code))
  }
})
