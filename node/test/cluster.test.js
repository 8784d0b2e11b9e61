'use strict'
// A Node cluster (four worker processes) sharing one database: every
// verification and usage record of every worker is counted exactly once.
// This file is both the test (primary) and the workers' script.

const cluster = require('node:cluster')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { TokenManager } = require('..')

const WORKERS = 4
const USES = 50

if (cluster.isPrimary) {
  const { test } = require('node:test')
  const assert = require('node:assert/strict')

  test('cluster workers share one database and lose nothing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-cluster-'))
    const db = path.join(dir, 'cluster.db')
    const tm = new TokenManager(db)
    const created = tm.createKey({ owner: 'svc' })
    cluster.setupPrimary({ exec: __filename, silent: false })
    const exits = []
    for (let n = 0; n < WORKERS; n++) {
      const w = cluster.fork({ ITK_DB: db, ITK_KEY: created.key, ITK_KEY_ID: created.record.id, ITK_N: String(n) })
      exits.push(new Promise((resolve) => w.on('exit', (code) => resolve(code))))
    }
    assert.deepEqual(await Promise.all(exits), Array(WORKERS).fill(0))
    assert.equal(tm.getKey(created.record.id).usageCount, WORKERS * USES)
    const ids = tm.exportUsage({ limit: 1000 }).items.map((r) => r.requestId).sort()
    assert.deepEqual(ids, Array.from({ length: WORKERS }, (_, n) => `worker-${n}`))
    tm.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
} else {
  const tm = new TokenManager(process.env.ITK_DB)
  let ok = true
  for (let i = 0; i < USES; i++) ok = ok && tm.verifyKey(process.env.ITK_KEY).valid
  // The same request id from two workers would count once; each reports its own.
  tm.recordUsage({ requestId: `worker-${process.env.ITK_N}`, keyId: process.env.ITK_KEY_ID, promptTokens: 1 })
  tm.close()
  process.exit(ok ? 0 : 1)
}
