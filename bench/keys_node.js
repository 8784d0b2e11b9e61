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
measure('irontoken createKey (durability normal)', () => tm.createKey({ owner: 'bench' }), 2000)
tm.close()
