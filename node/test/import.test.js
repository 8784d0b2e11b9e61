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
  const old = new Map([[OLD.slice(0, 10), { hash: bcrypt.hashSync(OLD, 4), owner: 'acme', scopes: ['read'] }]])
  const checked = []
  const legacyCheck = async (key) => {
    checked.push(key)
    const row = old.get(key.slice(0, 10))
    return row && (await bcrypt.compare(key, row.hash)) ? { owner: row.owner, scopes: row.scopes } : null
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
    return { owner: 'late' }
  })
  assert.equal(raced.record.owner, 'raced')
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
