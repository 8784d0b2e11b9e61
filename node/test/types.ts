// Compile-only check that index.d.ts describes a usable API (tsc --noEmit).
import { TokenManager, isWellFormed, type KeyRecord, type VerifyResult } from '..'

const tm = new TokenManager(':memory:', { manualClockStart: 1_700_000_000, durability: 'normal' })
const created = tm.createKey({ owner: 'alice', scopes: ['read'], metadata: { a: 1 }, expiresIn: 60 })
const key: string = created.key
const record: KeyRecord = created.record
const v: VerifyResult = tm.verifyKey(key, ['read'])
if (v.valid && v.record) {
  const owner: string = v.record.owner
  void owner
}
const page = tm.listKeys({ owner: 'alice', status: 'active', limit: 10 })
const next: string | undefined = page.nextCursor
tm.updateKey(record.id, { name: 'x', clearExpiry: true })
// burst defaults to count: a limit may leave it out.
tm.updateKey(record.id, { rateLimits: [{ name: 'per_second', count: 10, periodMs: 1000 }] })
void tm.createKey({ owner: 'bob', rateLimits: [{ name: 'per_minute', count: 60, periodMs: 60_000, burst: 10 }] })
const shownForLogs: { key: string; record: KeyRecord } = created.toJSON()
void shownForLogs
tm.rotateKey(record.id, { overlapSeconds: 60 })
tm.revokeKey(record.id, { reason: 'test', actor: 'ops' })
tm.listAudit({ keyId: record.id }).items.forEach((e) => e.action.toUpperCase())
const ok: boolean = isWellFormed(key)
const fromHeader: VerifyResult = tm.verifyKey(Buffer.from(key)) // raw header bytes
const okBytes: boolean = isWellFormed(new TextEncoder().encode(key))
void fromHeader
void okBytes
void next
void ok
tm.close()

import { jwtSign, jwtVerify, JwtVerifier, type JwtError } from '..'
const tok: string = jwtSign({ sub: 'a' }, 'x'.repeat(32), { algorithm: 'HS256', kid: 'k' })
const verified = jwtVerify(tok, 'x'.repeat(32), { algorithms: ['HS256'], requireExp: false, currentDate: new Date() })
const sub = verified.payload.sub
const jv = new JwtVerifier(Buffer.alloc(32, 1), { algorithms: ['HS256'], audience: ['a', 'b'] })
// JWT keys take more than API keys: a KeyObject or a JWK object too.
const secretKey = require('node:crypto').createSecretKey(Buffer.alloc(32, 1)) as import('node:crypto').KeyObject
void new JwtVerifier(secretKey, { algorithms: ['HS256'] })
void jwtVerify(tok, { kty: 'oct', k: 'AQ' }, { algorithms: ['HS256'] })
void jwtSign({ sub: 'a' }, secretKey)
try {
  jv.verify(tok)
} catch (e) {
  const je = e as JwtError
  void je.irontokenCode
}
void sub

import type { QuotaDecision, Session, UsageTotals, IronTokenEvent } from '..'
const tm2 = new TokenManager(':memory:')
const k2 = tm2.createKey({ owner: 'o', rateLimits: [{ name: 'rps', count: 10, periodMs: 1000, burst: 20 }] })
const s: Session = tm2.createSession({ owner: 'o', keyId: k2.record.id, ttlSeconds: 60 })
const d: QuotaDecision = tm2.consumeQuota(k2.record.id, { requests: 1 })
const vw = tm2.verifyKeyWith(k2.key, { rateLimit: true, quota: { requests: 1 } })
const rows: UsageTotals[] = tm2.usageSummary({ groupBy: ['model', 'day'] })
const evs: IronTokenEvent[] = tm2.drainEvents()
void s
void d
void vw.rateLimit?.retryAfterMs
void rows
void evs
