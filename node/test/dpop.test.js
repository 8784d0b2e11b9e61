'use strict'
// DPoP (RFC 9449) and certificate-bound tokens (RFC 8705) through the Node.js
// binding: the shared vectors, proofs made by jose, a proof accepted once,
// bound tokens and families refused without their proof.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')

const irontoken = require('..')
const { TokenManager, verifyDpopProof, jwkThumbprint, certThumbprint, tokenBinding } = irontoken

const ROOT = path.join(__dirname, '..', '..')
const VECTORS = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/vectors/dpop.json'), 'utf8'))
const KEYS = path.join(ROOT, 'tests/vectors/jwt/keys')
const MASTER = '07'.repeat(32)
const URL = 'https://api.example.com/items'

const camel = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/_(\w)/g, (_, c) => c.toUpperCase()), v]))
const ath = (t) => crypto.createHash('sha256').update(t).digest('base64url')

test('the shared vectors', () => {
  assert.equal(ath(VECTORS.ath.access_token), VECTORS.ath.ath)
  for (const c of VECTORS.cases) {
    const options = { ...camel(c.check), now: c.now }
    if (c.error) {
      assert.throws(() => verifyDpopProof(c.proof, options), { code: c.error }, c.name)
    } else {
      const got = verifyDpopProof(c.proof, options)
      if (c.jkt) assert.equal(got.jkt, c.jkt, c.name)
    }
  }
})

async function client() {
  const jose = await import('jose')
  const { privateKey, publicKey } = await jose.generateKeyPair('ES256')
  const jwk = await jose.exportJWK(publicKey)
  return {
    jkt: jwkThumbprint(jwk),
    async proof(htm, htu, accessToken, extra = {}) {
      const claims = { htm, htu, ...extra }
      if (accessToken) claims.ath = ath(accessToken)
      return new jose.SignJWT(claims)
        .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk })
        .setJti(crypto.randomUUID())
        .setIssuedAt()
        .sign(privateKey)
    },
  }
}

test('jose-made proofs verify once; attacks are refused', async () => {
  const tm = new TokenManager(':memory:')
  const c = await client()
  const proof = await c.proof('POST', URL)
  assert.equal(tm.verifyDpopProof(proof, { htm: 'POST', htu: URL }).jkt, c.jkt)
  assert.throws(() => tm.verifyDpopProof(proof, { htm: 'POST', htu: URL }), { code: 'DPOP_PROOF_REPLAYED' })
  const wrongMethod = await c.proof('GET', URL)
  const wrongUrl = await c.proof('POST', URL + '/x')
  const noNonce = await c.proof('POST', URL)
  assert.throws(() => tm.verifyDpopProof(wrongMethod, { htm: 'POST', htu: URL }), { code: 'DPOP_PROOF_INVALID' })
  assert.throws(() => tm.verifyDpopProof(wrongUrl, { htm: 'POST', htu: URL }), { code: 'DPOP_PROOF_INVALID' })
  assert.throws(() => tm.verifyDpopProof(noNonce, { htm: 'POST', htu: URL, nonce: 'n1' }), { code: 'DPOP_NONCE_REQUIRED' })
  tm.verifyDpopProof(await c.proof('POST', URL, null, { nonce: 'n1' }), { htm: 'POST', htu: URL, nonce: 'n1' })
  assert.throws(() => tm.verifyDpopProof(proof, { htm: 'POST' }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('a DPoP-bound token pair needs its proof', async () => {
  const tm = new TokenManager(':memory:', { masterKey: MASTER })
  tm.createSigningKey('EdDSA')
  const c = await client()
  const pair = tm.issueTokenPair('alice', { dpopJkt: c.jkt })
  const token = pair.accessToken
  assert.throws(() => tm.verifyJwt(token, { algorithms: ['EdDSA'] }), (e) => e.irontokenCode === 'DPOP_BINDING_MISMATCH')
  const proof = await c.proof('GET', URL, token)
  const { payload } = tm.verifyJwt(token, { algorithms: ['EdDSA'], dpopProof: proof, htm: 'GET', htu: URL + '?q=1' })
  assert.deepEqual(payload.cnf, { jkt: c.jkt })
  assert.throws(() => tm.verifyJwt(token, { algorithms: ['EdDSA'], dpopProof: proof, htm: 'GET', htu: URL }), (e) => e.irontokenCode === 'DPOP_PROOF_REPLAYED')
  const thief = await client()
  const stolen = await thief.proof('GET', URL, token)
  assert.throws(() => tm.verifyJwt(token, { algorithms: ['EdDSA'], dpopProof: stolen, htm: 'GET', htu: URL }), (e) => e.irontokenCode === 'DPOP_BINDING_MISMATCH')
  const tokenUrl = 'https://auth.example.com/token'
  assert.throws(() => tm.refreshTokenPair(pair.refreshToken), { code: 'DPOP_BINDING_MISMATCH' })
  const next = await tm.refreshTokenPairAsync(pair.refreshToken, { dpopProof: await c.proof('POST', tokenUrl), htm: 'POST', htu: tokenUrl })
  assert.equal(next.familyId, pair.familyId)
  tm.close()
})

test('a certificate-bound token needs its certificate', () => {
  const pem = fs.readFileSync(path.join(KEYS, 'rsa_cert.pem'))
  const other = fs.readFileSync(path.join(KEYS, 'client_cert_b.pem'), 'utf8')
  const der = new crypto.X509Certificate(pem).raw
  const thumb = certThumbprint(pem)
  assert.equal(certThumbprint(der), thumb)
  assert.equal(certThumbprint(pem.toString('utf8')), thumb)
  assert.equal(certThumbprint(encodeURIComponent(pem.toString('utf8'))), thumb)
  assert.equal(thumb, crypto.createHash('sha256').update(der).digest('base64url'))
  assert.throws(() => certThumbprint('not a certificate'), { code: 'INVALID_KEY_MATERIAL' })
  const tm = new TokenManager(':memory:', { masterKey: MASTER })
  tm.createSigningKey('ES256')
  const pair = tm.issueTokenPair('svc', { certThumbprint: thumb })
  assert.deepEqual(tm.verifyJwt(pair.accessToken, { algorithms: ['ES256'], clientCert: pem }).payload.cnf, { 'x5t#S256': thumb })
  assert.throws(() => tm.verifyJwt(pair.accessToken, { algorithms: ['ES256'], clientCert: other }), (e) => e.irontokenCode === 'MTLS_BINDING_MISMATCH')
  assert.throws(() => tm.verifyJwt(pair.accessToken, { algorithms: ['ES256'] }), (e) => e.irontokenCode === 'MTLS_BINDING_MISMATCH')
  assert.throws(() => tm.refreshTokenPair(pair.refreshToken, { clientCert: other }), { code: 'MTLS_BINDING_MISMATCH' })
  tm.refreshTokenPair(pair.refreshToken, { clientCert: der })
  // The same rule for claims another verifier checked.
  const claims = { sub: 'svc', cnf: { 'x5t#S256': thumb } }
  assert.equal(tokenBinding(claims, { clientCert: der }), null)
  for (const clientCert of [undefined, other, 'garbage']) {
    assert.throws(() => tokenBinding(claims, { clientCert }), { code: 'MTLS_BINDING_MISMATCH' })
  }
  assert.throws(() => tokenBinding({ cnf: { jkt: 'k'.repeat(43) } }), { code: 'DPOP_BINDING_MISMATCH' })
  assert.equal(tokenBinding({ cnf: { jkt: 'k'.repeat(43) } }, { proofGiven: true }), 'k'.repeat(43))
  assert.equal(tokenBinding({ sub: 'x' }), null)
  tm.close()
})
