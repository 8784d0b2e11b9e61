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
tm.rotateKey(record.id, { overlapSeconds: 60 })
tm.revokeKey(record.id, { reason: 'test', actor: 'ops' })
tm.listAudit({ keyId: record.id }).items.forEach((e) => e.action.toUpperCase())
const ok: boolean = isWellFormed(key)
void next
void ok
tm.close()
