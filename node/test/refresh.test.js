'use strict'
// Refresh-token families through the Node.js binding: rotation, reuse
// detection that revokes the family (another process refreshed first), four
// processes racing one refresh, the async forms, jose reading the access
// token through the exported JWKS, and hostile input.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync, spawn } = require('node:child_process')

const { TokenManager } = require('..')

const MASTER = '07'.repeat(32)
// Refreshes argv[2] on the store argv[1]; prints OK or the error code.
const CHILD = `const it = require(${JSON.stringify(path.join(__dirname, '..'))});
  const tm = new it.TokenManager(process.argv[1], { masterKey: process.argv[3] });
  try { tm.refreshTokenPair(process.argv[2]); process.stdout.write('OK') }
  catch (e) { process.stdout.write(e.code) }`

function store() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-refresh-'))
  return { dir, db: path.join(dir, 'r.db') }
}

test('a reused refresh token revokes its family; jose reads the access token', async () => {
  const { dir, db } = store()
  const tm = new TokenManager(db, { masterKey: MASTER })
  tm.createSigningKey('ES256')
  const first = tm.issueTokenPair('alice', { scopes: ['read'], ttlSeconds: 600, claims: { aud: 'api', tenantId: 't1' } })
  assert.equal(first.tokenType, 'Bearer')
  assert.equal(first.expiresIn, 600)
  assert.match(first.refreshToken, /^itkrt_/)
  const jose = await import('jose')
  const { payload } = await jose.jwtVerify(first.accessToken, jose.createLocalJWKSet(tm.jwks()), { audience: 'api' })
  assert.equal(payload.sub, 'alice')
  assert.equal(payload.tenantId, 't1', 'claims are passed verbatim')
  assert.equal(payload.fid, first.familyId)

  // Another process refreshes first; this one comes back with the spent token.
  assert.equal(execFileSync(process.execPath, ['-e', CHILD, db, first.refreshToken, MASTER], { encoding: 'utf8' }), 'OK')
  tm.drainEvents()
  assert.throws(() => tm.refreshTokenPair(first.refreshToken), (e) => e.code === 'REFRESH_TOKEN_REUSED' && !e.message.includes(first.refreshToken))
  const fam = tm.getTokenFamily(first.familyId)
  assert.equal(fam.status, 'revoked')
  assert.equal(fam.revokeReason, 'reuse_detected')
  assert.deepEqual(tm.drainEvents().map((e) => e.kind), ['refresh_token_reused'])
  tm.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

test('four processes racing one refresh: one wins', async () => {
  const { dir, db } = store()
  const tm = new TokenManager(db, { masterKey: MASTER })
  tm.createSigningKey('EdDSA')
  const pair = tm.issueTokenPair('racer')
  const run = () => new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', CHILD, db, pair.refreshToken, MASTER])
    let out = ''
    p.stdout.on('data', (d) => { out += d })
    p.on('error', reject)
    p.on('close', () => resolve(out))
  })
  const got = await Promise.all([run(), run(), run(), run()])
  assert.equal(got.filter((g) => g === 'OK').length, 1, String(got))
  assert.ok(got.includes('REFRESH_TOKEN_REUSED'), String(got))
  assert.ok(got.every((g) => ['OK', 'REFRESH_TOKEN_REUSED', 'REFRESH_TOKEN_REVOKED'].includes(g)), String(got))
  assert.equal(tm.getTokenFamily(pair.familyId).status, 'revoked')
  tm.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

test('async forms, revocation by family and subject', async () => {
  const tm = new TokenManager(':memory:', { masterKey: MASTER })
  tm.createSigningKey('EdDSA')
  const p = await tm.issueTokenPairAsync('bob', { refreshTtlSeconds: 60 })
  const q = await tm.refreshTokenPairAsync(p.refreshToken)
  assert.equal(q.familyId, p.familyId)
  await assert.rejects(tm.refreshTokenPairAsync(p.refreshToken), { code: 'REFRESH_TOKEN_REUSED' })
  const a = tm.issueTokenPair('carol')
  const b = tm.issueTokenPair('carol')
  assert.equal(tm.revokeTokenFamily(a.familyId, { reason: 'logout' }), true)
  assert.equal(tm.revokeTokenFamily(a.familyId), false)
  assert.throws(() => tm.refreshTokenPair(a.refreshToken), { code: 'REFRESH_TOKEN_REVOKED' })
  assert.equal(tm.revokeTokenFamilies('carol'), 1)
  assert.throws(() => tm.refreshTokenPair(b.refreshToken), { code: 'REFRESH_TOKEN_REVOKED' })
  tm.close()
})

test('hostile input is refused with stable codes', async () => {
  const tm = new TokenManager(':memory:', { masterKey: MASTER })
  tm.createSigningKey('EdDSA')
  for (const bad of ['', 'garbage', 'itkrt_' + 'A'.repeat(49), 'itkrt_\u0000', 'x'.repeat(100000)]) {
    assert.throws(() => tm.refreshTokenPair(bad), { code: 'REFRESH_TOKEN_INVALID' })
  }
  assert.throws(() => tm.refreshTokenPair(42), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.issueTokenPair('x', { claims: { exp: 1 } }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.issueTokenPair('x', { claims: 'no' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.issueTokenPair('x', { subject: 'y' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.issueTokenPair('x', { ttlSecs: 1 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.issueTokenPair('', {}), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.getTokenFamily('nope'), { code: 'NOT_FOUND' })
  await assert.rejects(tm.issueTokenPairAsync('x', { ttlSeconds: -1 }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})
