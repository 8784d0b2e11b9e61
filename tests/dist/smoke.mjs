// The installed npm package from an ES module: named imports.
import assert from 'node:assert/strict'
import { TokenManager, jwtSign, jwtVerify, version } from 'irontoken'

const tm = new TokenManager(':memory:')
const created = tm.createKey({ owner: 'alice', scopes: ['read'] })
assert.equal(tm.verifyKey(created.key, ['read']).valid, true)
assert.equal(tm.verifyKey(created.key, ['write']).valid, false)
tm.close()
const secret = Buffer.from('a-32-byte-secret-for-hs256-tests!')
const token = jwtSign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 }, secret, { algorithm: 'HS256' })
assert.equal(jwtVerify(token, secret, { algorithms: ['HS256'] }).payload.sub, 'alice')
console.log(`node smoke (ESM): irontoken ${version}: ok`)
