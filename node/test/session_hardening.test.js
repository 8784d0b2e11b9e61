'use strict'
// Session hijacking defences through the Node.js binding: rotation refuses
// the old id, a fingerprint-bound session refuses another client, a
// per-owner limit (refuse or evict), sign-out everywhere.
const { test } = require('node:test')
const assert = require('node:assert/strict')

const { TokenManager } = require('..')

test('rotation, fingerprints, limits and ending every session', () => {
  const tm = new TokenManager(':memory:')
  const s = tm.createSession({ owner: 'alice', ttlSeconds: 3600, fingerprint: 'ua=firefox|key=k1', metadata: { role: 'guest' } })
  assert.equal(s.fingerprintBound, true)
  assert.equal(tm.verifySession(s.id, { fingerprint: 'ua=firefox|key=k1' }).id, s.id)
  assert.throws(() => tm.verifySession(s.id, { fingerprint: 'ua=curl|key=k1' }), { code: 'SESSION_FINGERPRINT_MISMATCH' })
  assert.throws(() => tm.verifySession(s.id), { code: 'SESSION_FINGERPRINT_MISMATCH' })
  const next = tm.rotateSession(s.id, { fingerprint: 'ua=firefox|key=k1' })
  assert.notEqual(next.id, s.id)
  assert.deepEqual(next.metadata, { role: 'guest' })
  assert.throws(() => tm.verifySession(s.id, { fingerprint: 'ua=firefox|key=k1' }), { code: 'SESSION_ENDED' })
  assert.equal(tm.getSession(s.id).endReason, 'rotated')

  const a = tm.createSession({ owner: 'bob', maxConcurrent: 2 })
  const b = tm.createSession({ owner: 'bob', maxConcurrent: 2 })
  assert.throws(() => tm.createSession({ owner: 'bob', maxConcurrent: 2 }), { code: 'SESSION_LIMIT_EXCEEDED' })
  const c = tm.createSession({ owner: 'bob', maxConcurrent: 2, evictOldest: true })
  assert.equal(tm.getSession(a.id).endReason, 'evicted')
  assert.equal(tm.endSessions('bob', { reason: 'password changed', exceptSessionId: c.id }), 1)
  assert.equal(tm.getSession(b.id).endReason, 'password changed')
  assert.equal(tm.getSession(c.id).status, 'active')
  assert.throws(() => tm.endSessions('bob', { nope: 1 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => tm.createSession({ owner: 'bob', maxConcurrent: 0 }), { code: 'INVALID_ARGUMENT' })
  tm.close()
})
