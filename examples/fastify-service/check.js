'use strict'
// Starts the service on a free port and checks its answers.
const assert = require('node:assert/strict')
const { TokenManager } = require('irontoken')
const { build } = require('./server.js')

async function main() {
  const tm = new TokenManager(':memory:')
  const app = build(tm)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${app.server.address().port}`
  try {
    const reader = tm.createKey({ owner: 'alice', scopes: ['read'] })
    const ok = await fetch(`${base}/api/items`, { headers: { 'X-API-Key': reader.key } })
    assert.equal(ok.status, 200)
    assert.equal((await ok.json()).owner, 'alice')
    assert.equal((await fetch(`${base}/api/items`)).status, 401)
    assert.equal((await fetch(`${base}/admin`, { headers: { 'X-API-Key': reader.key } })).status, 403)
    assert.equal((await fetch(`${base}/health`)).status, 200)
    console.log('fastify-service: ok')
  } finally {
    await app.close()
    tm.close()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
