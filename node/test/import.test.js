'use strict'
// Keys from the old system: import by plaintext or SHA-256, all-or-nothing
// batches, and the bcrypt upgrade-on-use path (the old check runs only for
// keys irontoken does not know; a good old key is imported on first use).
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const bcrypt = require('bcryptjs')
const { TokenManager, verifyOrUpgrade, upgradable } = require('..')

const OLD = 'dev-sk-4f1c9a7e2b8d6035aa71'
const sha256 = (s, enc) => crypto.createHash('sha256').update(s).digest(enc)

test('legacy keys by plaintext and by SHA-256 verify', () => {
  const tm = new TokenManager(':memory:')
  assert.equal(tm.verifyKey(OLD).reason, 'MALFORMED') // no legacy key here yet
  const rec = tm.importKey({ key: OLD, owner: 'acme', scopes: ['read'], actor: 'migration' })
  assert.equal(rec.prefix, 'legacy')
  assert.ok(!rec.displayPrefix.includes(OLD.slice(6)))
  assert.equal(tm.verifyKey(OLD, ['read']).valid, true)
  assert.equal(tm.verifyKey('dev-sk-0000000000000000000').reason, 'NOT_FOUND')
  const recs = tm.importKeys([
    { keyHash: sha256('legacy-hex-0123456789abcdef', 'hex'), owner: 'a', displayPrefix: 'sk…ef' },
    { keyHash: sha256('legacy-b64-0123456789abcdef', 'base64'), owner: 'b' },
  ])
  assert.deepEqual(recs.map((r) => r.displayPrefix), ['sk…ef', 'legacy'])
  for (const short of ['', 'ab']) {
    // 3-32 characters: shorter was a STORAGE error (the column's CHECK)
    assert.throws(() => tm.importKey({ key: 'legacy-disp-0123456789a', owner: 'a', displayPrefix: short }), { code: 'INVALID_ARGUMENT' })
  }
  assert.equal(tm.verifyKey('legacy-hex-0123456789abcdef').valid, true)
  assert.equal(tm.verifyKey('legacy-b64-0123456789abcdef').valid, true)
  assert.throws(() => tm.importKey({ key: OLD, owner: 'again' }), { code: 'CONFLICT' })
  const audit = tm.listAudit({ keyId: rec.id }).items
  assert.equal(audit[0].action, 'key.create')
  assert.equal(audit[0].detail.imported, true)
  tm.close()
})

test('an import batch is all or nothing and errors do not echo keys', async () => {
  const tm = new TokenManager(':memory:')
  assert.throws(
    () => tm.importKeys([{ key: 'legacy-good-0123456789ab', owner: 'a' }, { keyHash: 'zz', owner: 'a' }]),
    (e) => e.code === 'INVALID_ARGUMENT' && /^INVALID_ARGUMENT: key 1: .*SHA-256/.test(e.message),
  )
  assert.equal(tm.listKeys().items.length, 0)
  assert.throws(() => tm.importKey({ owner: 'a' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(
    () => tm.importKey({ key: 'old secret with a space 0000', owner: 'a' }),
    (e) => e.code === 'INVALID_ARGUMENT' && !e.message.includes('old secret'),
  )
  await assert.rejects(tm.importKeysAsync([{ keyHash: 'zz', owner: 'a' }]), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('upgrade on use: bcrypt runs once per old key, never for irontoken keys', async () => {
  const tm = new TokenManager(':memory:')
  const old = new Map([[OLD.slice(0, 10), { id: 'u-1', hash: bcrypt.hashSync(OLD, 4), owner: 'acme', scopes: ['read'] }]])
  const checked = []
  const legacyCheck = async (key) => {
    checked.push(key)
    const row = old.get(key.slice(0, 10))
    return row && (await bcrypt.compare(key, row.hash)) ? { legacyId: row.id, owner: row.owner, scopes: row.scopes } : null
  }
  const first = await verifyOrUpgrade(tm, OLD, legacyCheck, ['read'])
  assert.equal(first.valid, true)
  assert.equal(first.record.owner, 'acme')
  for (let i = 0; i < 3; i++) assert.equal((await verifyOrUpgrade(tm, OLD, legacyCheck, ['read'])).valid, true)
  assert.deepEqual(checked, [OLD])
  assert.equal((await verifyOrUpgrade(tm, OLD, legacyCheck, ['admin'])).reason, 'INSUFFICIENT_SCOPE')
  const wrong = OLD.slice(0, 10) + 'x'.repeat(OLD.length - 10)
  assert.equal((await verifyOrUpgrade(tm, wrong, legacyCheck)).reason, 'NOT_FOUND')
  const created = tm.createKey({ owner: 'bob' })
  tm.revokeKey(created.record.id)
  assert.equal((await verifyOrUpgrade(tm, created.key, legacyCheck)).reason, 'REVOKED')
  assert.equal((await verifyOrUpgrade(tm, 'short', legacyCheck)).reason, 'MALFORMED')
  assert.deepEqual(checked, [OLD, wrong])
  assert.equal(upgradable(created.key, 'NOT_FOUND'), false)
  // A concurrent request imported the key first: still valid, no error.
  const raced = await verifyOrUpgrade(tm, 'other-old-key-0123456789', (key) => {
    tm.importKey({ key, owner: 'raced' })
    return { legacyId: 'u-2', owner: 'late' }
  })
  assert.equal(raced.record.owner, 'raced')
  tm.close()
})

test('a deleted key stays deleted: no upgrade, no import, until its tombstone is lifted', async () => {
  const tm = new TokenManager(':memory:')
  const check = async () => ({ legacyId: 'u-1', owner: 'acme' })
  const first = await verifyOrUpgrade(tm, OLD, check)
  assert.equal(first.valid, true)
  tm.deleteKey(first.record.id, { actor: 'ops' })
  assert.equal((await verifyOrUpgrade(tm, OLD, check)).reason, 'NOT_FOUND')
  assert.throws(() => tm.importKey({ key: OLD, owner: 'mallory' }), (e) => e.code === 'CONFLICT' && /liftTombstone|lift_tombstone/.test(e.message))
  const hash = require('node:crypto').createHash('sha256').update(OLD).digest('hex')
  assert.throws(() => tm.importKey({ keyHash: hash, owner: 'mallory' }), { code: 'CONFLICT' })
  assert.equal(tm.liftTombstone({ keyHash: hash, actor: 'ops' }), true)
  assert.equal(tm.liftTombstone({ key: OLD }), false)
  assert.equal((await verifyOrUpgrade(tm, OLD, check)).valid, true)
  assert.equal(tm.listAudit({ action: 'key.tombstone_lift' }).items.length, 1)
  assert.throws(() => tm.liftTombstone({}), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('one old record yields one key, whatever bcrypt accepts past 72 bytes', async () => {
  const tm = new TokenManager(':memory:')
  const long = 'old_' + 'k'.repeat(70)
  const lenient = async (key) => (key.slice(0, 72) === long.slice(0, 72) ? { legacyId: 'u-9', owner: 'acme' } : null)
  assert.equal((await verifyOrUpgrade(tm, long, lenient)).valid, true)
  for (const ending of ['AA', 'BB', 'CC']) {
    assert.equal((await verifyOrUpgrade(tm, long.slice(0, 72) + ending, lenient)).reason, 'NOT_FOUND')
  }
  assert.equal(tm.listKeys({ owner: 'acme' }).items.length, 1)
  await assert.rejects(verifyOrUpgrade(tm, 'another-old-key-0123456789', async () => ({ owner: 'acme' })), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('a key of the wrong type is INVALID_ARGUMENT and its bytes stay out of the message', () => {
  const tm = new TokenManager(':memory:')
  const secret = 'legacy-buf-0123456789'
  for (const key of [Buffer.from(secret), { secret }, [secret]]) {
    assert.throws(
      () => tm.importKey({ key, owner: 'a' }),
      (e) => e.code === 'INVALID_ARGUMENT' && !e.message.includes('108,101') && !e.message.includes(secret),
    )
  }
  tm.close()
})

test('requireApiKey({ legacyCheck }) upgrades an old key on its first use', async () => {
  const express = require('express')
  const { requireApiKey } = require('../express.js')
  const tm = new TokenManager(':memory:')
  const calls = []
  const legacyCheck = async (key) => {
    calls.push(key)
    return key === 'old-dev-key-0123456789' ? { legacyId: 'row-1', owner: 'carol', scopes: ['read'] } : null
  }
  const app = express()
  app.get('/items', requireApiKey(tm, { scopes: ['read'], legacyCheck }), (req, res) => res.json({ owner: req.irontoken.owner }))
  const server = app.listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  const base = `http://127.0.0.1:${server.address().port}`
  try {
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${base}/items`, { headers: { 'X-API-Key': 'old-dev-key-0123456789' } })
      assert.equal(r.status, 200)
      assert.deepEqual(await r.json(), { owner: 'carol' })
    }
    assert.equal((await fetch(`${base}/items`, { headers: { 'X-API-Key': 'unknown-old-key-0123456789' } })).status, 401)
    assert.deepEqual(calls, ['old-dev-key-0123456789', 'unknown-old-key-0123456789'])
    assert.throws(() => requireApiKey(tm, { legacyCheck: 'nope' }), { code: 'INVALID_ARGUMENT' })
  } finally {
    server.close()
    tm.close()
  }
})
