'use strict'
// Capability tokens through the Node.js binding (node:test): the shared
// vectors, revocation of a parent and its children by another process,
// sealing, interop with @biscuit-auth/biscuit-wasm both ways, hostile tokens.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const irontoken = require('..')
const { TokenManager, attenuate, seal, inspectCapability } = irontoken

const VECTORS = path.join(__dirname, '..', '..', 'tests', 'vectors')
const MASTER = '07'.repeat(32)

function camel(o) {
  const out = {}
  for (const [k, v] of Object.entries(o)) out[k.replace(/_([a-z])/g, (_, c) => c.toUpperCase())] = v
  return out
}

// Offline attenuation reads the system clock: a manual clock starts there.
function manager(file = ':memory:', manual = true) {
  const options = { masterKey: MASTER }
  if (manual) options.manualClockStart = Math.floor(Date.now() / 1000)
  return new TokenManager(file, options)
}

const doc = JSON.parse(fs.readFileSync(path.join(VECTORS, 'capabilities.json'), 'utf8'))
for (const c of doc.cases) {
  test(`capability vector: ${c.name}`, () => {
    const tm = manager()
    const keyId = tm.createKey({ owner: 'acme' }).record.id
    let token = tm.mintCapability(keyId, camel(c.mint))
    for (const a of c.attenuate) token = attenuate(token, camel(a))
    if (c.advance_seconds) tm.advanceClock(c.advance_seconds)
    for (const r of c.requests) {
      const { expect, ...req } = r
      const a = tm.authorize(token, camel(req))
      assert.equal(a.reason, expect, JSON.stringify({ req, a }))
      assert.equal(a.allowed, expect === 'OK')
    }
  })
}

test('authorize reports the effective limits; authorizeAsync answers the same', async () => {
  const tm = manager()
  const keyId = tm.createKey({ owner: 'acme' }).record.id
  const token = tm.mintCapability(keyId, { tools: ['llm'], ttlSeconds: 600, ceilingMicros: 1000 })
  const child = attenuate(token, { ceilingMicros: 300, ttlSeconds: 60 })
  const a = tm.authorize(child, { tool: 'llm', costMicros: 100 })
  assert.deepEqual(
    [a.allowed, a.keyId, a.owner, a.tools, a.ceilingMicros, a.remainingMicros, a.chargedMicros, a.blocks],
    [true, keyId, 'acme', ['llm'], 300, 200, 100, 2],
  )
  const b = await tm.authorizeAsync(child, { tool: 'llm', costMicros: 250 })
  assert.equal(b.reason, 'CEILING_EXCEEDED')
  const info = inspectCapability(child)
  assert.equal(info.blocks.length, 2)
  assert.equal(info.revocationIds.length, 2)
  assert.equal(info.sealed, false)
})

test('a revoked parent refuses its children, from another process', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-cap-'))
  const db = path.join(dir, 'caps.db')
  const tm = manager(db, false)
  const keyId = tm.createKey({ owner: 'acme' }).record.id
  const root = tm.mintCapability(keyId, { tools: ['search', 'fetch'], ttlSeconds: 600 })
  const mid = attenuate(root, { tools: ['search'] })
  const leaf = attenuate(mid, { ttlSeconds: 60 })
  const sibling = attenuate(root, { tools: ['fetch'] })
  assert.ok(tm.authorize(leaf, { tool: 'search' }).allowed)
  const script = `const it = require(${JSON.stringify(path.join(__dirname, '..'))});
    const tm = new it.TokenManager(process.argv[1], { masterKey: '${MASTER}' });
    process.stdout.write(tm.revokeCapability(process.argv[2], { actor: 'ops' }))`
  const id = execFileSync(process.execPath, ['-e', script, db, mid], { encoding: 'utf8' })
  assert.equal(id, inspectCapability(mid).revocationIds[1])
  assert.equal(tm.authorize(mid, { tool: 'search' }).reason, 'CAPABILITY_REVOKED')
  assert.equal(tm.authorize(leaf, { tool: 'search' }).reason, 'CAPABILITY_REVOKED')
  assert.ok(tm.authorize(root, { tool: 'search' }).allowed)
  assert.ok(tm.authorize(sibling, { tool: 'fetch' }).allowed)
  assert.equal(tm.revokeCapabilityId(id), false)
  tm.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

test('sealed tokens refuse appends; bad input has stable codes', () => {
  const tm = manager()
  const token = tm.mintCapability(tm.createKey({ owner: 'acme' }).record.id, { tools: ['x'], ttlSeconds: 60 })
  const sealed = seal(token)
  assert.ok(tm.authorize(sealed, { tool: 'x' }).allowed)
  assert.throws(() => attenuate(sealed, { tools: ['x'] }), { code: 'CAPABILITY_SEALED' })
  assert.throws(() => attenuate('garbage'), { code: 'CAPABILITY_MALFORMED' })
  assert.throws(() => attenuate(token, { datalog: 'check if' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => attenuate(token, { tools: [] }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.authorize(token, { tool: '' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.authorize(token, { tool: 'x', extra: 1 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.revokeCapabilityId('zz'), { code: 'INVALID_ARGUMENT' })
  for (const bad of ['', 'garbage', 'A'.repeat(1 << 20), token.slice(0, -8)]) {
    const a = tm.authorize(bad, { tool: 'x' })
    assert.equal(a.allowed, false)
    assert.match(a.reason, /^CAPABILITY_(MALFORMED|BAD_SIGNATURE)$/)
  }
  let long = token
  for (let i = 1; i < 32; i++) long = attenuate(long)
  assert.throws(() => attenuate(long), { code: 'CAPABILITY_MALFORMED' })
  const plain = new TokenManager(':memory:')
  assert.throws(() => plain.capabilityPublicKey(), { code: 'MASTER_KEY_REQUIRED' })
})

function wasm(req) {
  const out = execFileSync(
    process.execPath,
    ['--no-warnings', '--experimental-wasm-modules', path.join(__dirname, '..', 'interop', 'biscuit_wasm.mjs'), JSON.stringify(req)],
    { encoding: 'utf8' },
  )
  return JSON.parse(out.slice(out.indexOf('{')))
}

test('interop with @biscuit-auth/biscuit-wasm, both ways', () => {
  const tm = manager(':memory:', false)
  const keyId = tm.createKey({ owner: 'acme' }).record.id
  const token = tm.mintCapability(keyId, { tools: ['search', 'fetch'], ttlSeconds: 600 })
  const publicKey = tm.capabilityPublicKey()
  const ours = attenuate(token, { tools: ['fetch'] })
  assert.equal(wasm({ op: 'authorize', token: ours, publicKey, tool: 'fetch' }).allowed, true)
  assert.equal(wasm({ op: 'authorize', token: ours, publicKey, tool: 'search' }).allowed, false)
  const theirs = wasm({ op: 'append', token, publicKey, code: 'check if tool("search");' }).token
  assert.ok(tm.authorize(theirs, { tool: 'search' }).allowed)
  assert.equal(tm.authorize(theirs, { tool: 'fetch' }).allowed, false)
  // Under another store's root: refused.
  const other = manager()
  const foreign = other.mintCapability(other.createKey({ owner: 'acme' }).record.id, { tools: ['search'], ttlSeconds: 60 })
  assert.equal(tm.authorize(foreign, { tool: 'search' }).reason, 'CAPABILITY_BAD_SIGNATURE')
})
