'use strict'
// One-time ids (claimJti) through the Node.js binding: the first claim wins,
// in another process too.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const { TokenManager } = require('..')

test('claimJti: once, across processes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-jti-'))
  const db = path.join(dir, 'jti.db')
  const tm = new TokenManager(db)
  const expiresAt = Math.floor(Date.now() / 1000) + 600
  assert.equal(tm.claimJti('jti-1', { expiresAt }), true)
  assert.equal(tm.claimJti('jti-1', { expiresAt }), false)
  const script = `const it = require(${JSON.stringify(path.join(__dirname, '..'))});
    process.stdout.write(String(new it.TokenManager(process.argv[1]).claimJti(process.argv[2], { expiresAt: Number(process.argv[3]) })))`
  const run = (jti) => execFileSync(process.execPath, ['-e', script, db, jti, String(expiresAt)], { encoding: 'utf8' })
  assert.equal(run('jti-1'), 'false')
  assert.equal(run('jti-2'), 'true')
  assert.throws(() => tm.claimJti('', { expiresAt }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.claimJti('x', {}), { code: 'INVALID_ARGUMENT' })
  tm.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

test('verifyJwt with requireFreshJti: a replay is refused', () => {
  const tm = new TokenManager(':memory:', { masterKey: '07'.repeat(32) })
  tm.createSigningKey('EdDSA')
  const token = tm.issueJwt({ sub: 'alice' }, 600)
  assert.equal(tm.verifyJwt(token, { algorithms: ['EdDSA'], requireFreshJti: true }).payload.sub, 'alice')
  assert.throws(() => tm.verifyJwt(token, { algorithms: ['EdDSA'], requireFreshJti: true }), (e) => e.irontokenCode === 'JWT_REPLAYED' || e.code === 'JWT_REPLAYED')
  assert.equal(tm.verifyJwt(token, { algorithms: ['EdDSA'] }).payload.sub, 'alice')
  tm.close()
})
