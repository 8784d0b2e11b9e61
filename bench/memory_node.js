'use strict'
// Peak RSS of a synchronous loop of 2M verifyKey calls (1000 keys, each
// result read, none kept). Run: `make bench-compare`.
const { TokenManager } = require(require('node:path').join(__dirname, '..', 'node'))
const os = require('node:os')
const path = require('node:path')
const fs = require('node:fs')
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mem-'))
const tm = new TokenManager(path.join(dir, 'm.db'), { durability: 'normal' })
const keys = tm.createKeys(Array.from({ length: 1000 }, (_, i) => ({ owner: 'o' + i, scopes: ['read'] }))).map((c) => c.key)
let peak = 0, ok = 0
const t = process.hrtime.bigint()
for (let i = 0; i < 2e6; i++) {
  const v = tm.verifyKey(keys[i % 1000])
  if (v.valid) ok++
  if (i % 100000 === 0) peak = Math.max(peak, process.memoryUsage().rss)
}
peak = Math.max(peak, process.memoryUsage().rss)
const us = Number(process.hrtime.bigint() - t) / 2e6 / 1000
console.log(`2M synchronous verifyKey calls: ${ok} valid, peak RSS ${(peak / 1048576).toFixed(0)} MB, ${us.toFixed(2)} µs each`)
tm.close()
fs.rmSync(dir, { recursive: true, force: true })
