// The installed npm package's types under `tsc --strict`, then run.
import { TokenManager, jwtSign, jwtVerify, type VerifyResult } from 'irontoken'
import { requireApiKey, type Middleware } from 'irontoken/express'

const tm = new TokenManager(':memory:')
const created = tm.createKey({ owner: 'alice', scopes: ['read'] })
const result: VerifyResult = tm.verifyKey(created.key, ['read'])
if (!result.valid || result.record === null || result.record.owner !== 'alice') throw new Error('verify failed')
const kid: string = tm.createKey({ owner: 'bob' }).record.id
tm.setQuota({ subject: kid, metric: 'requests', period: 'day', limit: 1 })
const first: boolean = tm.consumeQuota(kid, { requests: 1 }).allowed
if (!first || tm.consumeQuota(kid, { requests: 1 }).allowed) throw new Error('quota not enforced')
const guard: Middleware = requireApiKey(tm, { scopes: ['read'], quota: { requests: 1 } })
if (typeof guard !== 'function') throw new Error('express adapter')
tm.close()
const secret = Buffer.from('a-32-byte-secret-for-hs256-tests!')
const token: string = jwtSign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 }, secret, { algorithm: 'HS256' })
const sub: unknown = jwtVerify(token, secret, { algorithms: ['HS256'] }).payload.sub
if (sub !== 'alice') throw new Error('jwt failed')
console.log('node smoke (TypeScript --strict): ok')
