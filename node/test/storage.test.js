'use strict'
// The database file from Node: private to its owner, never created over a
// missing or empty file when asked not to, a corrupt file refused, and a
// flush under way waited for.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TokenManager } = require('..')

test('database files are private to their owner', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-'))
  const db = path.join(dir, 'p.db')
  const tm = new TokenManager(db)
  tm.createKey({ owner: 'o' })
  for (const suffix of ['', '-wal', '-shm']) {
    assert.equal(fs.statSync(db + suffix).mode & 0o077, 0, suffix)
  }
  tm.close()
})

test('create: false refuses a missing file; a corrupt file is refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-'))
  const missing = path.join(dir, 'typo.db')
  assert.throws(() => new TokenManager(missing, { create: false }), { code: 'DATABASE_NOT_FOUND' })
  assert.equal(fs.existsSync(missing), false)
  new TokenManager(missing).close()
  new TokenManager(missing, { create: false }).close()
  const db = path.join(dir, 'c.db')
  const tm = new TokenManager(db)
  for (let i = 0; i < 150; i++) tm.createKey({ owner: `o${i}` })
  tm.close()
  const bytes = fs.readFileSync(db)
  bytes.fill(0xa5, 2 * 4096, 4 * 4096)
  fs.writeFileSync(db, bytes)
  assert.throws(() => new TokenManager(db), { code: 'DATABASE_CORRUPT' })
})

test('flush waits for a flush under way, and getKey meanwhile counts every use', async () => {
  // The write lock is held by another process (a Python sqlite3 one: two
  // SQLite libraries in one process do not see each other's POSIX locks),
  // which lets it go 600 ms after taking it.
  const { spawn } = require('node:child_process')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-inflight-'))
  const db = path.join(dir, 'inflight.db')
  const tm = new TokenManager(db, { busyTimeoutMs: 20000, flushIntervalMs: 3600000 })
  const c = tm.createKey({ owner: 'f' })
  for (let i = 0; i < 3; i++) assert.ok(tm.verifyKey(c.key).valid)
  const holder = spawn(process.env.PYTHON || 'python3', [
    '-c',
    "import sqlite3, sys, time\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN IMMEDIATE')\nprint('locked', flush=True)\ntime.sleep(0.6)\nc.execute('ROLLBACK')\nprint('released', flush=True)\n",
    db,
  ])
  let out = ''
  const said = (word) =>
    new Promise((resolve) => {
      const look = () => (out.includes(word) ? resolve() : setTimeout(look, 5))
      look()
    })
  holder.stdout.on('data', (d) => (out += d))
  await said('locked')
  const first = tm.flushAsync() // takes the buffer on the pool, waits for the lock
  await new Promise((r) => setTimeout(r, 150))
  // Synchronous: blocks this thread until the first flush has written.
  assert.equal(tm.getKey(c.record.id).usageCount, 3)
  tm.flush()
  await first
  await said('released')
  assert.equal(new TokenManager(db).getKey(c.record.id).usageCount, 3)
  tm.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

// Issue 29: smaller broken promises.

// Issue 29: smaller broken promises.
test('an empty file is never made a new database', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-'))
  const empty = path.join(dir, 'truncated.db')
  fs.writeFileSync(empty, '')
  for (const options of [{}, { create: false }]) {
    assert.throws(() => new TokenManager(empty, options), (e) => e.code === 'DATABASE_NOT_FOUND' && /empty/.test(e.message))
  }
  assert.equal(fs.statSync(empty).size, 0)
})
