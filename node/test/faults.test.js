'use strict'
// Bounds under faults from Node: a PostgreSQL "server" that accepts
// connections and never answers (listening, never read: the JS thread is
// blocked in the call, so nothing is answered) is STORAGE within 1.5 x
// storageTimeoutMs; the bound options are checked like every other.

const assert = require('node:assert/strict')
const net = require('node:net')
const { test } = require('node:test')

const { TokenManager } = require('..')

test('storageTimeoutMs, maxStalenessMs and verifyFailOpen are checked options', () => {
  for (const bad of [{ storageTimeoutMs: 5 }, { maxStalenessMs: 1 }, { storageTimeoutMs: -1 }]) {
    assert.throws(() => new TokenManager(':memory:', bad), { code: 'INVALID_ARGUMENT' })
  }
  const tm = new TokenManager(':memory:', { storageTimeoutMs: 500, maxStalenessMs: 300, verifyFailOpen: false })
  assert.ok(tm.createKey({ owner: 'acme' }).key)
  tm.close()
})

test('a server that never answers is STORAGE within the bound', async () => {
  const held = []
  const hole = net.createServer((s) => held.push(s))
  await new Promise((resolve) => hole.listen(0, '127.0.0.1', resolve))
  const { port } = hole.address()
  const bound = 1000
  const start = process.hrtime.bigint()
  assert.throws(
    () => new TokenManager(`postgresql://postgres@127.0.0.1:${port}/test`, { storageTimeoutMs: bound }),
    { code: 'STORAGE' },
  )
  const took = Number(process.hrtime.bigint() - start) / 1e6
  assert.ok(took <= bound * 1.5, `took ${took} ms (storageTimeoutMs ${bound})`)
  for (const s of held) s.destroy()
  await new Promise((resolve) => hole.close(resolve))
})
