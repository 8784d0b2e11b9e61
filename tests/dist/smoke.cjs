// The installed npm package from CommonJS: keys, JWT, quota.
const assert = require('node:assert/strict')
const it = require('irontoken')

assert.ok(require.resolve('irontoken').includes('node_modules'), 'not the installed package')
const tm = new it.TokenManager(':memory:')
const created = tm.createKey({ owner: 'alice', scopes: ['read'], expiresIn: 3600 })
const ok = tm.verifyKey(created.key, ['read'])
assert.equal(ok.valid, true)
assert.equal(ok.record.owner, 'alice')
tm.revokeKey(created.record.id, { reason: 'smoke', actor: 'dist' })
assert.equal(tm.verifyKey(created.key).reason, 'REVOKED')
assert.throws(() => tm.getKey('nope'), { code: 'KEY_NOT_FOUND' })

const kid = tm.createKey({ owner: 'bob' }).record.id
tm.setQuota({ subject: kid, metric: 'requests', period: 'day', limit: 1 })
assert.equal(tm.consumeQuota(kid, { requests: 1 }).allowed, true)
assert.equal(tm.consumeQuota(kid, { requests: 1 }).allowed, false)
tm.close()

const secret = Buffer.from('a-32-byte-secret-for-hs256-tests!')
const token = it.jwtSign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 }, secret, { algorithm: 'HS256' })
assert.equal(it.jwtVerify(token, secret, { algorithms: ['HS256'] }).payload.sub, 'alice')
assert.throws(() => it.jwtVerify(token, Buffer.from('another-32-byte-secret-for-hs256'), { algorithms: ['HS256'] }))
for (const sub of ['irontoken/express', 'irontoken/fastify']) {
  assert.equal(typeof require(sub).requireApiKey, 'function', sub)
}
console.log(`node smoke (CommonJS): irontoken ${it.version}: ok`)
