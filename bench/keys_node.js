'use strict'
// Side-by-side: API-key verification from Node.js. irontoken (Rust core via
// napi-rs) against bcryptjs (bcrypt as JS code bases use it today) and a
// node:crypto sha256 + Map lookup (an in-memory lower bound). One process.
// Run: `make bench-compare` (after `make build`).

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')
const NODE_PKG = path.join(__dirname, '..', 'node')
const bcrypt = require(require.resolve('bcryptjs', { paths: [NODE_PKG] }))
const { TokenManager } = require(NODE_PKG)

const N_KEYS = 10_000

function measure(name, fn, n) {
  const per = Math.max(1, Math.floor(n / 20))
  const batches = []
  for (let b = 0; b < 20; b++) {
    const t = process.hrtime.bigint()
    for (let i = 0; i < per; i++) fn()
    batches.push(Number(process.hrtime.bigint() - t) / per)
  }
  batches.sort((a, b) => a - b)
  const med = batches[10]
  const [v, unit] = med < 1e6 ? [med / 1e3, 'µs'] : [med / 1e6, 'ms']
  console.log(`  ${name.padEnd(48)} ${v.toFixed(2).padStart(10)} ${unit}/op`)
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'irontoken-bench-'))
const tm = new TokenManager(path.join(dir, 'bench.db'), { durability: 'normal' })
const keys = []
for (let i = 0; i < N_KEYS; i++) keys.push(tm.createKey({ owner: 'bench', scopes: ['read'] }).key)
tm.flush()
const valid = keys[N_KEYS / 2]
const other = new TokenManager(':memory:').createKey({ owner: 'x' }).key
const map = new Map(keys.map((k) => [crypto.createHash('sha256').update(k).digest('hex'), { owner: 'bench' }]))
const hashed = bcrypt.hashSync(valid, 10)

console.log(`API-key verification, ${N_KEYS} keys in the store, one Node process`)
measure('irontoken verifyKey VALID', () => tm.verifyKey(valid), 20000)
measure('irontoken verifyKey VALID + scope', () => tm.verifyKey(valid, ['read']), 20000)
measure('irontoken verifyKey NOT_FOUND', () => tm.verifyKey(other), 20000)
measure('irontoken verifyKey MALFORMED', () => tm.verifyKey('itk_nope'), 20000)
measure('node:crypto sha256 + Map (in memory, no DB)', () => map.get(crypto.createHash('sha256').update(valid).digest('hex')), 20000)
measure('bcryptjs.compareSync, cost 10 (one hash)', () => bcrypt.compareSync(valid, hashed), 20)
// A hand-written insert at the same durability (better-sqlite3, WAL,
// synchronous=NORMAL, one commit per key): a random secret, its SHA-256, one
// row; "+ audit" also appends an audit row in the same commit, as createKey does.
const Database = require(path.join(__dirname, '..', 'target', 'bench-node', 'node_modules', 'better-sqlite3'))
const w = new Database(path.join(dir, 'plain_w.db'))
w.pragma('journal_mode = WAL')
w.pragma('synchronous = NORMAL')
w.exec('CREATE TABLE k (h BLOB PRIMARY KEY, owner TEXT, scopes TEXT, created_at INTEGER)')
w.exec('CREATE TABLE a (id INTEGER PRIMARY KEY, at INTEGER, action TEXT, h BLOB)')
const insK = w.prepare("INSERT INTO k VALUES (?, 'bench', '[]', ?)")
const insA = w.prepare("INSERT INTO a (at, action, h) VALUES (?, 'key.create', ?)")
const secret = () => crypto.createHash('sha256').update('itk_' + crypto.randomBytes(32).toString('base64url')).digest()
const plainInsert = w.transaction((h, now) => insK.run(h, now))
const plainInsertAudit = w.transaction((h, now) => {
  insK.run(h, now)
  insA.run(now, h)
})
for (let r = 0; r < 3; r++) {
  console.log(`  -- create, round ${r + 1}`)
  measure('irontoken createKey (durability normal)', () => tm.createKey({ owner: 'bench' }), 2000)
  measure('better-sqlite3 INSERT, committed (by hand)', () => plainInsert(secret(), Math.floor(Date.now() / 1000)), 2000)
  measure('better-sqlite3 INSERT + audit row, committed', () => plainInsertAudit(secret(), Math.floor(Date.now() / 1000)), 2000)
}
w.close()
tm.close()
