'use strict'
// The API-key lifecycle through the Node.js binding (node:test).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const util = require('node:util')
const { execFileSync } = require('node:child_process')

const { TokenManager, isWellFormed, version } = require('..')

const T0 = 1_700_000_000
const VECTORS = path.join(__dirname, '..', '..', 'tests', 'vectors')

function manager() {
  return new TokenManager(':memory:', { manualClockStart: T0 })
}

function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'irontoken-node-'))
}

function vectors() {
  const doc = JSON.parse(fs.readFileSync(path.join(VECTORS, 'keys.json'), 'utf8'))
  return doc.cases.map((c) => {
    if (c.key !== undefined) return c
    const r = c.key_repeat
    return { ...c, key: r.unit.repeat(r.count) + (r.suffix || '') }
  })
}

function throwsCode(fn, code) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof Error)
    assert.equal(e.code, code)
    return true
  })
}

test('shared key vectors', () => {
  const tm = manager()
  const cases = vectors()
  assert.ok(cases.length >= 10)
  for (const c of cases) {
    assert.equal(isWellFormed(c.key), c.well_formed, c.name)
    const v = tm.verifyKey(c.key)
    assert.equal(v.valid, false, c.name)
    assert.equal(v.reason, c.well_formed ? 'NOT_FOUND' : 'MALFORMED', c.name)
    assert.equal(v.record, null)
  }
})

test('lifecycle: create, verify, disable, enable, revoke, audit', () => {
  const tm = manager()
  const c = tm.createKey({
    owner: 'alice',
    name: 'ci',
    scopes: ['read', 'write'],
    metadata: { team: 'core', n: [1, 2] },
    actor: 'node',
  })
  assert.match(c.key, /^itk_[0-9A-Za-z]{49}$/)
  const id = c.record.id
  assert.deepEqual(c.record.metadata, { team: 'core', n: [1, 2] })
  assert.equal(c.record.status, 'active')

  const v = tm.verifyKey(c.key)
  assert.equal(v.valid, true)
  assert.equal(v.reason, 'VALID')
  assert.equal(v.record.id, id)

  assert.equal(tm.disableKey(id, { actor: 'ops' }).status, 'disabled')
  assert.equal(tm.verifyKey(c.key).reason, 'DISABLED')
  assert.equal(tm.enableKey(id).status, 'active')
  assert.equal(tm.verifyKey(c.key).valid, true)
  const r = tm.revokeKey(id, { reason: 'leaked', actor: 'ops' })
  assert.equal(r.status, 'revoked')
  assert.equal(r.revokedReason, 'leaked')
  assert.equal(tm.verifyKey(c.key).reason, 'REVOKED')
  throwsCode(() => tm.enableKey(id), 'KEY_REVOKED')
  throwsCode(() => tm.rotateKey(id), 'KEY_REVOKED')

  const actions = tm
    .listAudit({ keyId: id })
    .items.reverse()
    .map((e) => `${e.action}:${e.outcome}`)
  assert.deepEqual(actions, [
    'key.create:ok',
    'key.disable:ok',
    'key.verify:DISABLED',
    'key.enable:ok',
    'key.revoke:ok',
    'key.verify:REVOKED',
  ])
  const created = tm.listAudit({ keyId: id, action: 'key.create' }).items[0]
  assert.equal(created.actor, 'node')
  assert.equal(created.detail.owner, 'alice')
})

test('answered records show the last use; only valid verifications count', () => {
  const tm = manager()
  const c = tm.createKey({ owner: 'u', scopes: ['read'] })
  assert.equal(tm.verifyKey(c.key).record.lastUsedAt, T0)
  tm.advanceClock(100)
  const refused = tm.verifyKey(c.key, ['admin'])
  assert.equal(refused.reason, 'INSUFFICIENT_SCOPE')
  assert.deepEqual([refused.record.usageCount, refused.record.lastUsedAt], [1, T0])
  tm.advanceClock(100)
  const r = tm.verifyKey(c.key, ['read']).record
  assert.deepEqual([r.usageCount, r.lastUsedAt], [2, T0 + 200])
})

test('usage counts', () => {
  const tm = manager()
  const c = tm.createKey({ owner: 'u' })
  for (let i = 0; i < 5; i++) assert.equal(tm.verifyKey(c.key).valid, true)
  assert.equal(tm.getKey(c.record.id).usageCount, 5)
  tm.flush()
  const r = tm.getKey(c.record.id)
  assert.equal(r.usageCount, 5)
  assert.equal(r.lastUsedAt, T0)
})

test('expiry with an injected clock', () => {
  const tm = manager()
  const c = tm.createKey({ owner: 'bob', expiresIn: 60 })
  assert.equal(c.record.expiresAt, T0 + 60)
  tm.advanceClock(59)
  assert.equal(tm.verifyKey(c.key).valid, true)
  assert.equal(tm.advanceClock(1), T0 + 60)
  assert.equal(tm.verifyKey(c.key).reason, 'EXPIRED')
  assert.equal(tm.getKey(c.record.id).status, 'expired')
  assert.equal(tm.updateKey(c.record.id, { expiresAt: T0 + 3600 }).status, 'active')
  assert.equal(tm.updateKey(c.record.id, { clearExpiry: true }).expiresAt, undefined)
  throwsCode(() => tm.createKey({ owner: 'bob', expiresAt: T0 }), 'INVALID_ARGUMENT')
})

test('rotation with overlap', () => {
  const tm = manager()
  const old = tm.createKey({ owner: 'carol', scopes: ['a'], metadata: { x: 1 }, prefix: 'sp_live' })
  const next = tm.rotateKey(old.record.id, { overlapSeconds: 300, actor: 'ops' })
  assert.notEqual(next.key, old.key)
  assert.ok(next.key.startsWith('sp_live_'))
  assert.equal(next.record.version, 2)
  assert.equal(next.record.rotatedFrom, old.record.id)
  assert.deepEqual(next.record.scopes, ['a'])
  assert.equal(tm.getKey(old.record.id).rotatedTo, next.record.id)
  tm.advanceClock(299)
  assert.equal(tm.verifyKey(old.key).valid, true)
  tm.advanceClock(1)
  assert.equal(tm.verifyKey(old.key).reason, 'EXPIRED')
  assert.equal(tm.verifyKey(next.key).valid, true)
  const third = tm.rotateKey(next.record.id)
  assert.equal(tm.verifyKey(next.key).reason, 'REVOKED')
  assert.equal(third.record.version, 3)
  const again = tm.createKey({ owner: 'dan' })
  tm.rotateKey(again.record.id, { overlapSeconds: 60 })
  throwsCode(() => tm.rotateKey(again.record.id, { overlapSeconds: 60 }), 'CONFLICT')
})

test('scopes', () => {
  const tm = manager()
  const c = tm.createKey({ owner: 's', scopes: ['read', 'write'] })
  assert.equal(tm.verifyKey(c.key, ['read']).valid, true)
  assert.equal(tm.verifyKey(c.key, ['read', 'write']).valid, true)
  const v = tm.verifyKey(c.key, ['read', 'admin'])
  assert.equal(v.valid, false)
  assert.equal(v.reason, 'INSUFFICIENT_SCOPE')
  assert.deepEqual(tm.updateKey(c.record.id, { scopes: ['admin', 'admin'] }).scopes, ['admin'])
  assert.equal(tm.verifyKey(c.key, ['admin']).valid, true)
})

test('bad input throws errors with stable codes', () => {
  const tm = manager()
  throwsCode(() => tm.createKey({ owner: '' }), 'INVALID_ARGUMENT')
  throwsCode(() => tm.createKey({}), 'INVALID_ARGUMENT')
  throwsCode(() => tm.createKey({ owner: 'a', prefix: 'Bad' }), 'INVALID_ARGUMENT')
  throwsCode(() => tm.createKey({ owner: 'a', metadata: [1] }), 'INVALID_ARGUMENT')
  throwsCode(() => tm.createKey({ owner: 'a', expiresIn: 1.5 }), 'INVALID_ARGUMENT')
  throwsCode(() => tm.listKeys({ status: 'bogus' }), 'INVALID_ARGUMENT')
  throwsCode(() => tm.listKeys({ limit: -1 }), 'INVALID_ARGUMENT')
  throwsCode(() => tm.verifyKey(42), 'INVALID_ARGUMENT')
  throwsCode(() => tm.getKey('missing'), 'KEY_NOT_FOUND')
  throwsCode(() => new TokenManager(':memory:').advanceClock(1), 'INVALID_ARGUMENT')
  throwsCode(() => new TokenManager(''), 'INVALID_ARGUMENT')
  throwsCode(() => new TokenManager(':memory:', { durability: 'sometimes' }), 'INVALID_ARGUMENT')
  throwsCode(() => new TokenManager('/nonexistent-dir/x/y.db'), 'STORAGE')
  assert.equal(tm.listKeys().items.length, 0)
})

test('pagination is stable', () => {
  const tm = manager()
  const ids = []
  for (let i = 0; i < 25; i++) ids.push(tm.createKey({ owner: i % 2 ? 'odd' : 'even' }).record.id)
  const seen = []
  let cursor
  do {
    const page = tm.listKeys({ limit: 4, cursor })
    seen.push(...page.items.map((r) => r.id))
    cursor = page.nextCursor
  } while (cursor)
  assert.deepEqual(seen, ids)
  assert.equal(tm.listKeys({ owner: 'even', status: 'active', limit: 1000 }).items.length, 13)
})

test('logging and serializing a created key hides it', () => {
  const tm = manager()
  const c = tm.createKey({ owner: 'secret' })
  const body = c.key.slice(4)
  for (const text of [util.inspect(c), JSON.stringify(c), String(c)]) {
    assert.ok(!text.includes(body.slice(8)), text)
  }
  assert.ok(util.inspect(c).includes(c.record.displayPrefix))
  const near = c.key.slice(0, -1) + (c.key.endsWith('x') ? 'y' : 'x')
  assert.equal(tm.verifyKey(near).reason, 'MALFORMED')
  for (const e of tm.listAudit().items) assert.ok(!JSON.stringify(e).includes(body.slice(8)))
})

test('a key as the raw bytes of a header: Buffer and Uint8Array verify; not UTF-8 is MALFORMED', async () => {
  const tm = manager()
  const c = tm.createKey({ owner: 'bytes', scopes: ['read'] })
  const buf = Buffer.from(c.key)
  const whole = new Uint8Array(buf.length + 2) // a view at an offset into a larger buffer
  whole.set(buf, 2)
  const u8 = whole.subarray(2)
  for (const raw of [buf, u8]) {
    assert.equal(tm.verifyKey(raw, ['read']).record.id, c.record.id)
    assert.ok(tm.tryVerifyKey(raw).valid)
    assert.ok((await tm.verifyKeyAsync(raw)).valid)
    assert.ok(tm.verifyKeyWith(raw, { requiredScopes: ['read'] }).valid)
    assert.ok(tm.tryVerifyKeyWith(raw).valid)
    assert.ok((await tm.verifyKeyWithAsync(raw)).valid)
    assert.ok(isWellFormed(raw))
  }
  const bad = Buffer.concat([buf.subarray(0, buf.length - 1), Buffer.from([0xff])])
  for (const junk of [bad, Buffer.from([0xff, 0xfe]), Buffer.alloc(0), c.key.slice(0, -1) + '\udcff']) {
    assert.equal(tm.verifyKey(junk).reason, 'MALFORMED')
    assert.equal((await tm.verifyKeyAsync(junk)).reason, 'MALFORMED')
    assert.equal(tm.verifyKeyWith(junk).reason, 'MALFORMED')
    assert.ok(!isWellFormed(junk))
  }
  for (const wrong of [12345, null, ['x'], { key: c.key }]) {
    assert.throws(() => tm.verifyKey(wrong), (e) => e.code === 'INVALID_ARGUMENT' && !e.message.includes(c.key.slice(4)))
  }
  tm.close()
})

test('the database file holds no plaintext', () => {
  const dir = tmpdir()
  const tm = new TokenManager(path.join(dir, 'keys.db'))
  const keys = []
  for (let i = 0; i < 10; i++) {
    const c = tm.createKey({ owner: `o${i}` })
    keys.push(c.key, tm.rotateKey(c.record.id).key)
    tm.verifyKey(c.key)
  }
  tm.close()
  const blob = Buffer.concat(fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f))))
  for (const k of keys) {
    assert.equal(blob.includes(k.slice(4)), false)
    assert.equal(blob.includes(k.slice(12, 34)), false)
  }
})

test('two processes see each other', () => {
  const dir = tmpdir()
  const db = path.join(dir, 'shared.db')
  const child = (action, arg) =>
    execFileSync(
      process.execPath,
      [
        '-e',
        `const { TokenManager } = require(${JSON.stringify(path.join(__dirname, '..'))});
         const [db, action, arg] = process.argv.slice(1);
         const tm = new TokenManager(db);
         if (action === 'verify') console.log(tm.verifyKey(arg).reason);
         else { tm.revokeKey(arg, { actor: 'child' }); console.log('revoked') }
         tm.close();`,
        db,
        action,
        arg,
      ],
      { encoding: 'utf8' },
    ).trim()
  const tm = new TokenManager(db)
  const a = tm.createKey({ owner: 'p' })
  const b = tm.createKey({ owner: 'p' })
  assert.equal(child('verify', a.key), 'VALID')
  // Verified here first: its cached state is invalidated by the child's
  // revocation (a new state epoch) before the next call.
  assert.equal(tm.verifyKey(a.key).reason, 'VALID')
  assert.equal(child('revoke', a.record.id), 'revoked')
  assert.equal(tm.verifyKey(a.key).reason, 'REVOKED')
  assert.equal(child('verify', b.key), 'VALID')
  tm.revokeKey(b.record.id)
  assert.equal(child('verify', b.key), 'REVOKED')
  assert.equal(tm.getKey(b.record.id).usageCount, 1)
  tm.close()
})

test('close flushes and later calls throw', () => {
  const dir = tmpdir()
  const db = path.join(dir, 'c.db')
  const tm = new TokenManager(db)
  const c = tm.createKey({ owner: 'x' })
  tm.verifyKey(c.key)
  tm.close()
  tm.close()
  throwsCode(() => tm.verifyKey(c.key), 'INVALID_ARGUMENT')
  const again = new TokenManager(db)
  assert.equal(again.getKey(c.record.id).usageCount, 1)
  again.close()
  assert.match(version, /^\d+\.\d+\.\d+/)
})

test('a verify result logs and serializes like a plain object', () => {
  const tm = manager()
  const c = tm.createKey({ owner: 'log' })
  const v = tm.verifyKey(c.key)
  const { valid, reason, record } = v
  assert.equal(valid, true)
  assert.equal(reason, 'VALID')
  assert.equal(record.owner, 'log')
  const json = JSON.parse(JSON.stringify(v))
  assert.equal(json.valid, true)
  assert.equal(json.record.id, c.record.id)
  assert.match(util.inspect(v), /VerifyResult \{[\s\S]*reason: 'VALID'/)
})

test('the ErrorCode type lists every error code', () => {
  const doc = JSON.parse(fs.readFileSync(path.join(VECTORS, 'error_codes.json'), 'utf8'))
  const dts = fs.readFileSync(path.join(__dirname, '..', 'types', 'records.d.ts'), 'utf8')
  for (const { code } of doc.codes) assert.ok(dts.includes(`'${code}'`), code)
})

test('real failures carry the stable codes of error_codes.json', () => {
  const doc = JSON.parse(fs.readFileSync(path.join(VECTORS, 'error_codes.json'), 'utf8'))
  const known = new Set(doc.codes.map((c) => c.code))
  const dir = tmpdir()
  const tm = new TokenManager(path.join(dir, 'codes.db'), { manualClockStart: T0 })
  const k = tm.createKey({ owner: 'codes' })
  const other = new TokenManager(':memory:', { manualClockStart: T0, masterKey: '01'.repeat(32) })
  const cases = [
    ['INVALID_ARGUMENT', () => tm.createKey({ owner: '' })],
    ['INVALID_ARGUMENT', () => tm.createKey({ owner: 'a\u202eb' })],
    ['KEY_NOT_FOUND', () => tm.getKey('00000000-0000-0000-0000-000000000000')],
    ['CONFLICT', () => { tm.rotateKey(k.record.id, { overlapSeconds: 60 }); tm.rotateKey(k.record.id, { overlapSeconds: 60 }) }],
    ['NO_ACTIVE_SIGNING_KEY', () => other.issueJwt({ sub: 'x' })],
    ['MASTER_KEY_REQUIRED', () => tm.createSigningKey('ES256')],
    ['DATABASE_NOT_FOUND', () => new TokenManager(path.join(dir, 'missing.db'), { create: false })],
    ['SESSION_NOT_FOUND', () => tm.getSession('nope')],
    ['NOT_FOUND', () => tm.releaseReservation('nope')],
  ]
  for (const [code, run] of cases) {
    assert.ok(known.has(code), code)
    assert.throws(run, (e) => {
      assert.equal(e.code, code, `${code}: ${e.message}`)
      assert.ok(e.message.startsWith(`${code}: `), e.message)
      return true
    })
  }
  tm.close()
  other.close()
})

test('verifyKeyAsync on SQLite answers on the calling thread, with the same answers and codes', async () => {
  const tm = new TokenManager(':memory:')
  const c = tm.createKey({ owner: 'inline', scopes: ['read'] })
  // Answered inline: settled within a few microtask ticks, where a trip
  // through the libuv pool needs a turn of the event loop.
  let settled = false
  const answer = tm.verifyKeyAsync(c.key, ['read']).then((r) => {
    settled = true
    return r
  })
  for (let i = 0; i < 5; i++) await null
  assert.equal(settled, true)
  const v = await answer
  assert.equal(v.valid, true)
  assert.equal(v.record.id, c.record.id)
  assert.equal((await tm.verifyKeyAsync(c.key, ['admin'])).reason, 'INSUFFICIENT_SCOPE')
  assert.equal((await tm.verifyKeyAsync('itk_nope')).reason, 'MALFORMED')
  tm.revokeKey(c.record.id)
  assert.equal((await tm.verifyKeyAsync(c.key)).reason, 'REVOKED')
  // Bad arguments reject (never throw synchronously), with the sync call's code.
  const pending = tm.verifyKeyAsync(42)
  assert.ok(pending instanceof Promise)
  await assert.rejects(pending, { code: 'INVALID_ARGUMENT' })
  // verifyKeyWithAsync too, when it needs no write: no quota, no limits on the key.
  const plain = tm.createKey({ owner: 'inline' })
  settled = false
  const withAnswer = tm.verifyKeyWithAsync(plain.key, { rateLimit: true }).then((r) => {
    settled = true
    return r
  })
  for (let i = 0; i < 5; i++) await null
  assert.equal(settled, true)
  assert.equal((await withAnswer).valid, true)
  assert.equal(tm.tryVerifyKeyWith(plain.key, { quota: { requests: 1 } }), null)
  assert.equal((await tm.verifyKeyWithAsync(plain.key, { quota: { requests: 1 } })).valid, true)
  await assert.rejects(tm.verifyKeyWithAsync(plain.key, { bogus: 1 }), { code: 'INVALID_ARGUMENT' })
  tm.close()
  await assert.rejects(tm.verifyKeyAsync(c.key), { code: 'INVALID_ARGUMENT' })
})

test('async variants run off the JS thread and reject with stable codes', async () => {
  const dir = tmpdir()
  const tm = new TokenManager(path.join(dir, 'async.db'), { masterKey: 'ef'.repeat(32) })
  const c = await tm.createKeyAsync({ owner: 'async', scopes: ['read'] })
  assert.ok(c.key.startsWith('itk_'))
  assert.equal(util.inspect(c).includes(c.key.slice(8)), false)
  const v = await tm.verifyKeyAsync(c.key, ['read'])
  assert.equal(v.valid, true)
  const rotated = await tm.rotateKeyAsync(c.record.id, { overlapSeconds: 60 })
  assert.equal(rotated.record.version, 2)
  const r = await tm.revokeKeyAsync(rotated.record.id, { reason: 'test' })
  assert.equal(r.status, 'revoked')
  await assert.rejects(tm.revokeKeyAsync(rotated.record.id), { code: 'KEY_REVOKED' })
  await assert.rejects(tm.createKeyAsync({ owner: '' }), { code: 'INVALID_ARGUMENT' })
  const k = await tm.createSigningKeyAsync('RS256')
  assert.equal(k.status, 'active')
  const k2 = await tm.rotateSigningKeyAsync({ overlapSeconds: 10 })
  assert.notEqual(k2.kid, k.kid)
  await tm.flushAsync()
  tm.close()
  await assert.rejects(async () => tm.flushAsync(), { code: 'INVALID_ARGUMENT' })
})

test('metrics in Prometheus text format', () => {
  const tm = manager()
  const c = tm.createKey({ owner: 'm' })
  tm.verifyKey(c.key)
  tm.verifyKey('itk_bad')
  const lines = tm.metrics().split('\n')
  assert.ok(lines.includes('irontoken_key_verifications_total{reason="VALID"} 1'))
  assert.ok(lines.includes('irontoken_key_verifications_total{reason="MALFORMED"} 1'))
  assert.ok(lines.includes('irontoken_keys_created_total 1'))
})

test('createKeys creates many keys in one transaction, all or none', async () => {
  const tm = manager()
  const created = tm.createKeys(
    Array.from({ length: 300 }, (_, i) => ({ owner: `o${i}`, scopes: ['read'], metadata: { i } })),
  )
  assert.equal(created.length, 300)
  const v = tm.verifyKey(created[123].key, ['read'])
  assert.ok(v.valid)
  assert.deepEqual(v.record.metadata, { i: 123 })
  assert.throws(
    () => tm.createKeys([{ owner: 'a' }, { owner: 'b' }, { owner: '' }]),
    (e) => e.code === 'INVALID_ARGUMENT' && /key 2:/.test(e.message),
  )
  assert.equal(tm.listKeys({ limit: 1000 }).items.length, 300)
  assert.deepEqual(tm.createKeys([]), [])
  const more = await tm.createKeysAsync([{ owner: 'x' }, { owner: 'y' }])
  assert.equal(more.length, 2)
  assert.ok(tm.verifyKey(more[1].key).valid)
  tm.close()
})

test('cache and memory options are checked and used', () => {
  const dir = tmpdir()
  const db = path.join(dir, 'o.db')
  const tm = new TokenManager(db, { keyCacheSize: 1, pageCacheMib: 1, mmapMib: 0 })
  const [a, b] = tm.createKeys([{ owner: 'a' }, { owner: 'b' }])
  for (let i = 0; i < 3; i++) {
    assert.ok(tm.verifyKey(a.key).valid && tm.verifyKey(b.key).valid)
  }
  assert.equal(tm.verifyKey(a.key).record.usageCount, 4)
  tm.close()
  for (const bad of [{ keyCacheSize: 0 }, { pageCacheMib: 0 }, { mmapMib: 70000 }, { mmapMib: -1 }, { keyCacheSize: 1.5 }]) {
    assert.throws(() => new TokenManager(db, bad), (e) => e.code === 'INVALID_ARGUMENT', JSON.stringify(bad))
  }
})

test('flushThreshold asks for an early flush: another manager sees the uses before close', async () => {
  const dir = tmpdir()
  const db = path.join(dir, 'f.db')
  const uses = (ids) => {
    const other = new TokenManager(db)
    try {
      return ids.reduce((n, id) => n + other.getKey(id).usageCount, 0)
    } finally {
      other.close()
    }
  }
  for (const threshold of [1, undefined]) {
    const opts = { flushIntervalMs: 3_600_000 }
    if (threshold !== undefined) opts.flushThreshold = threshold
    const tm = new TokenManager(db, opts)
    const keys = tm.createKeys(Array.from({ length: 16 }, () => ({ owner: 'o' })))
    for (const c of keys) assert.ok(tm.verifyKey(c.key).valid)
    const ids = keys.map((c) => c.record.id)
    if (threshold === undefined) {
      // The default (4096 entries; a use counter weighs 1/8) asks for nothing yet.
      await new Promise((r) => setTimeout(r, 300))
      assert.equal(uses(ids), 0)
    } else {
      // Eight counters make one entry: at least the first eight get written.
      const deadline = Date.now() + 10_000
      while (uses(ids) < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      assert.ok(uses(ids) >= 8)
    }
    tm.close()
    assert.equal(uses(ids), 16, 'close writes the rest')
  }
  for (const bad of [0, 2 ** 24 + 1, -1, 1.5, '8']) {
    assert.throws(() => new TokenManager(db, { flushThreshold: bad }), { code: 'INVALID_ARGUMENT' }, String(bad))
  }
})

test('verify results are plain JS data: readable after close, JSON and inspect like objects', async () => {
  const { VerifyResult } = require('..')
  const tm = manager()
  const c = tm.createKey({ owner: 'o', scopes: ['read'], metadata: { team: 'x' } })
  const v = tm.verifyKey(c.key, ['read'])
  const refused = tm.verifyKey(c.key, ['write'])
  const missing = tm.verifyKey('itk_nope')
  const later = await tm.verifyKeyAsync(c.key)
  tm.close()
  assert.ok(v instanceof VerifyResult && later instanceof VerifyResult)
  assert.equal(v.valid, true)
  assert.equal(v.record.owner, 'o')
  assert.deepEqual(v.record.metadata, { team: 'x' })
  assert.equal(v.record, v.record, 'parsed once')
  assert.equal(refused.reason, 'INSUFFICIENT_SCOPE')
  assert.equal(refused.record.id, c.record.id)
  assert.equal(missing.record, null)
  assert.equal(later.record.usageCount, 2)
  assert.deepEqual(JSON.parse(JSON.stringify(v)).record.id, c.record.id)
  assert.match(util.inspect(v), /^VerifyResult \{\s+valid: true,/)
  assert.ok(!('expiresAt' in v.record), 'absent optional fields stay absent')
})

test('createKey() with no argument is INVALID_ARGUMENT, like every bad argument', () => {
  const tm = new TokenManager(':memory:')
  for (const call of [() => tm.createKey(), () => tm.createKey(null), () => tm.importKey(), () => tm.importKeys()]) {
    assert.throws(call, (e) => e.code === 'INVALID_ARGUMENT' && e.message.startsWith('INVALID_ARGUMENT: '))
  }
  tm.close()
})

test('keys rotate when due: own period or the manager default, once, plaintexts returned', async () => {
  const tm = new TokenManager(':memory:', { manualClockStart: 1_700_000_000, defaultRotationPeriod: 500 })
  const own = tm.createKey({ owner: 'a', rotationPeriod: 100 })
  const other = tm.createKey({ owner: 'b' })
  assert.equal(own.record.rotationPeriod, 100)
  assert.equal(other.record.rotationPeriod, undefined)
  assert.deepEqual(tm.keysDue(), [])
  tm.advanceClock(100)
  assert.deepEqual(tm.keysDue().map((r) => r.id), [own.record.id])
  const rotated = tm.rotateDue({ overlapSeconds: 60, actor: 'cron' })
  assert.equal(rotated.length, 1)
  assert.equal(rotated[0].record.rotatedFrom, own.record.id)
  assert.equal(rotated[0].record.rotationPeriod, 100)
  assert.equal(tm.verifyKey(rotated[0].key).valid, true)
  assert.equal(tm.verifyKey(own.key).valid, true) // overlap
  assert.deepEqual(await tm.rotateDueAsync(), [])
  tm.advanceClock(400)
  const again = await tm.rotateDueAsync()
  assert.deepEqual(again.map((c) => c.record.owner).sort(), ['a', 'b'])
  const b = again.find((c) => c.record.owner === 'b').record.id
  assert.equal(tm.updateKey(b, { rotationPeriod: 30 }).rotationPeriod, 30)
  assert.equal(tm.updateKey(b, { clearRotationPeriod: true }).rotationPeriod, undefined)
  assert.throws(() => tm.updateKey(b, { rotationPeriod: 30, clearRotationPeriod: true }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.createKey({ owner: 'c', rotationPeriod: 0 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => new TokenManager(':memory:', { defaultRotationPeriod: -1 }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('stats(): keys by state and owner, use, top keys, most spent quotas; listKeys({ prefix })', () => {
  const tm = new TokenManager(':memory:')
  const made = ['alice', 'alice', 'alice', 'bob'].map((owner) => tm.createKey({ owner }))
  tm.revokeKey(made[1].record.id)
  tm.disableKey(made[2].record.id)
  tm.setQuota({ subject: made[0].record.id, metric: 'requests', period: 'day', limit: 4 })
  for (let i = 0; i < 3; i++) assert.equal(tm.verifyKeyWith(made[0].key, { quota: { requests: 1 } }).valid, true)
  tm.recordUsage({ keyId: made[3].record.id, model: 'm', promptTokens: 5, completionTokens: 7 })
  const s = tm.stats({ windowSeconds: 3600, top: 5 })
  assert.deepEqual(s.keys, { total: 4, active: 2, disabled: 1, revoked: 1, expired: 0 })
  assert.deepEqual(s.owners.map((o) => o.owner), ['alice', 'bob'])
  assert.equal(s.usage.promptTokens, 5)
  assert.equal(s.topKeys[0].keyId, made[3].record.id)
  assert.equal(s.quotas[0].subject, made[0].record.id)
  assert.equal(s.quotas[0].burn, 0.75)
  assert.equal(s.at - s.since, 3600)
  assert.deepEqual(tm.stats().keys, s.keys) // defaults: a day, top 10
  for (const bad of [{ top: 0 }, { windowSeconds: 0 }, { top: 1.5 }]) {
    assert.throws(() => tm.stats(bad), { code: 'INVALID_ARGUMENT' })
  }
  const shown = made[3].record.displayPrefix
  assert.deepEqual(tm.listKeys({ prefix: shown }).items.map((r) => r.id), [made[3].record.id])
  assert.equal(tm.listKeys({ prefix: 'itk_' }).items.length, 4)
  assert.equal(tm.listKeys({ prefix: 'zzz' }).items.length, 0)
  for (const prefix of ['', 'x'.repeat(65)]) assert.throws(() => tm.listKeys({ prefix }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})

test('TokenManager.fromEnv(): IRONTOKEN_DB names the database; the environment fills unset options', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-env-'))
  const db = path.join(dir, 'env.db')
  const saved = { ...process.env }
  try {
    delete process.env.IRONTOKEN_DB
    assert.throws(() => TokenManager.fromEnv(), (e) => e.code === 'INVALID_ARGUMENT' && /IRONTOKEN_DB/.test(e.message))
    process.env.IRONTOKEN_DB = db
    process.env.IRONTOKEN_RATE_LIMIT_STORE = 'local'
    const tm = TokenManager.fromEnv()
    assert.ok(tm instanceof TokenManager)
    const created = tm.createKey({ owner: 'env' })
    tm.close()
    assert.ok(fs.existsSync(db))
    const other = new TokenManager(db)
    assert.equal(other.verifyKey(created.key).valid, true)
    other.close()
    process.env.IRONTOKEN_RATE_LIMIT_STORE = 'nowhere'
    assert.throws(() => TokenManager.fromEnv(), { code: 'INVALID_ARGUMENT' })
    TokenManager.fromEnv({ rateLimitStore: 'store' }).close() // an explicit option wins
    process.env.IRONTOKEN_RATE_LIMIT_STORE = 'store'
    process.env.IRONTOKEN_STORAGE_TIMEOUT_MS = 'soon'
    assert.throws(() => TokenManager.fromEnv(), { code: 'INVALID_ARGUMENT' })
    assert.throws(() => TokenManager.fromEnv(null), { code: 'INVALID_ARGUMENT' })
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k]
    Object.assign(process.env, saved)
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('the old names of tryVerifyKey warn once and still answer', async () => {
  const tm = new TokenManager(':memory:')
  const c = tm.createKey({ owner: 'old-names' })
  const warnings = []
  const listen = (w) => warnings.push(w)
  process.on('warning', listen)
  try {
    assert.ok(tm.verifyKeyNow(c.key).valid)
    assert.ok(tm.verifyKeyWithNow(c.key).valid)
    assert.ok(tm.verifyKeyNow(c.key).valid)
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    process.off('warning', listen)
  }
  const ours = warnings.filter((w) => w.code === 'IRONTOKEN_DEP_TRY_VERIFY').map((w) => w.message)
  assert.deepEqual(ours, ['verifyKeyNow is deprecated: use tryVerifyKey', 'verifyKeyWithNow is deprecated: use tryVerifyKeyWith'])
})
