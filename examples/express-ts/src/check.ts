// Starts the service on a free port and checks its answers.
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { JwtVerifier, TokenManager, jwtSign } from 'irontoken'
import { app, listen } from './server'

async function main(): Promise<void> {
  const secret = Buffer.from('example-secret-of-at-least-32-bytes!')
  const tm = new TokenManager(':memory:')
  const verifier = new JwtVerifier(secret, { algorithms: ['HS256'], audience: 'api' })
  const server = await listen(app(tm, verifier))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  try {
    const reader = tm.createKey({ owner: 'alice', scopes: ['read'] })
    const writer = tm.createKey({ owner: 'bob', scopes: ['write'] })
    const ok = await fetch(`${base}/items`, { headers: { 'X-API-Key': reader.key } })
    assert.equal(ok.status, 200)
    assert.equal(((await ok.json()) as { owner: string }).owner, 'alice')
    assert.equal((await fetch(`${base}/items`)).status, 401)
    assert.equal((await fetch(`${base}/items`, { headers: { 'X-API-Key': writer.key } })).status, 403)
    const chatter = tm.createKey({ owner: 'erin', scopes: ['chat'] })
    const chat = (id: string) =>
      fetch(`${base}/chat`, { method: 'POST', headers: { 'X-API-Key': chatter.key, 'X-Request-ID': id } }).then(
        (r) => r.json() as Promise<{ counted: boolean }>,
      )
    assert.equal((await chat('req-1')).counted, true)
    assert.equal((await chat('req-1')).counted, false) // a retry counts once
    const created = (await (await fetch(`${base}/admin/keys`, { method: 'POST' })).json()) as { key: string; id: string }
    assert.equal(tm.verifyKey(created.key).valid, true)
    const now = Math.floor(Date.now() / 1000)
    const token = jwtSign({ sub: 'carol', aud: 'api', exp: now + 60, scope: 'profile' }, secret, { algorithm: 'HS256' })
    const me = await fetch(`${base}/me`, { headers: { Authorization: `Bearer ${token}` } })
    assert.deepEqual(await me.json(), { sub: 'carol' })
    console.log('express-ts: ok')
  } finally {
    server.close()
    tm.close()
  }
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
