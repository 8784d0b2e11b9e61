'use strict'
// Key verification from Node over a random working set, 10k / 100k / 1M keys
// stored: irontoken verifyKey against sha256 + better-sqlite3 by hand, on the
// databases bench/keys_sweep_python.py built (run it first; `make
// bench-compare` does). better-sqlite3 is built once into target/bench-node.
// Run: `node bench/keys_sweep_node.js [N ...]`.

const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')

const ROOT = path.join(__dirname, '..', 'target', 'bench')
const { TokenManager } = require(path.join(__dirname, '..', 'node'))
const Database = require(path.join(__dirname, '..', 'target', 'bench-node', 'node_modules', 'better-sqlite3'))

const SAMPLES = 100000
// pageCacheMib of the sized run: the 1M-key state index and usage table fit.
const SIZED_PAGE_CACHE_MIB = 256

function percentiles(fn, sample) {
  const ts = new Float64Array(sample.length)
  for (let i = 0; i < sample.length; i++) {
    const t = process.hrtime.bigint()
    fn(sample[i])
    ts[i] = Number(process.hrtime.bigint() - t)
  }
  ts.sort()
  return [ts[ts.length >> 1] / 1000, ts[Math.floor(ts.length * 0.99)] / 1000]
}

function median3(rounds, i) {
  return rounds.map((r) => r[i]).sort((a, b) => a - b)[1]
}

// The database of the newest schema built for n keys.
function newest(n) {
  const found = fs.existsSync(ROOT)
    ? fs
        .readdirSync(ROOT)
        .map((d) => [d, /^keys-v(\d+)-(\d+)$/.exec(d)])
        .filter(([d, m]) => m && Number(m[2]) === n && fs.existsSync(path.join(ROOT, d, 'keys.txt')))
        .sort((a, b) => Number(b[1][1]) - Number(a[1][1]))
    : []
  return found.length ? path.join(ROOT, found[0][0]) : null
}

function main() {
  const sizes = process.argv.slice(2).map(Number)
  console.log('verifyKey from Node, random keys out of N stored (p50 / p99 µs; by hand = sha256 + better-sqlite3)')
  console.log(`  ${'N'.padStart(9)} ${'irontoken p50'.padStart(14)} ${'p99'.padStart(7)} ${'by hand p50'.padStart(12)} ${'p99'.padStart(7)} ${'ratio p50 / p99'.padStart(16)} ${'unknown key: ours / by hand'.padStart(28)}`)
  for (const n of sizes.length ? sizes : [10000, 100000, 1000000]) {
    const dir = newest(n)
    if (!dir) {
      console.log(`  ${String(n).padStart(9)}  (no database: run bench/keys_sweep_python.py ${n} first)`)
      continue
    }
    const keys = fs.readFileSync(path.join(dir, 'keys.txt'), 'utf8').split('\n')
    const tm = new TokenManager(path.join(dir, 'irontoken.db'), { durability: 'normal' })
    const db = new Database(path.join(dir, 'plain.db'), { readonly: true })
    const stmt = db.prepare('SELECT owner, scopes FROM k WHERE h = ?')
    const plain = (k) => stmt.get(crypto.createHash('sha256').update(k).digest())
    const ours = (k) => tm.verifyKey(k).valid
    const unknown = new TokenManager(':memory:').createKey({ owner: 'x' }).key // well formed, not stored
    // mulberry32: 32-bit integer arithmetic only (a float LCG loses bits
    // past 2^53 and cycles after ~10k draws).
    let seed = n >>> 0
    const rand = () => {
      seed = (seed + 0x6d2b79f5) >>> 0
      let t = seed
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const { medians, distinct } = rounds(ours, plain, keys, rand, true)
    const u = percentiles((k) => tm.verifyKey(k), Array(20000).fill(unknown))[0]
    const up = percentiles(plain, Array(20000).fill(unknown))[0]
    row(String(n), medians, ` ${(u.toFixed(2) + ' / ' + up.toFixed(2)).padStart(28)}  (${distinct} distinct keys a round)`)
    tm.close()
    if (n >= 100000) sized(dir, keys, plain, rand)
    db.close()
  }
}

// The same sweep with the caches sized to the key set (README, "Verifying
// from a million keys"): every key verified once first, which warms both
// files the same way.
function sized(dir, keys, plain, rand) {
  const keyCacheSize = keys.length + Math.floor(keys.length / 10)
  const tm = new TokenManager(path.join(dir, 'irontoken.db'), {
    durability: 'normal',
    keyCacheSize,
    pageCacheMib: SIZED_PAGE_CACHE_MIB,
  })
  for (const k of keys) {
    tm.verifyKey(k)
    plain(k)
  }
  const { medians } = rounds((k) => tm.verifyKey(k).valid, plain, keys, rand, false)
  row('  sized', medians, `  (keyCacheSize ${keyCacheSize}, pageCacheMib ${SIZED_PAGE_CACHE_MIB})`)
  tm.close()
}

// p50 and p99 of ours, then of plain: the median of 3 interleaved rounds, a
// fresh random sample each (its first quarter run through both first when
// warm); and the distinct keys of the first sample.
function rounds(ours, plain, keys, rand, warm) {
  const oursR = []
  const theirsR = []
  let distinct = 0
  for (let round = 0; round < 3; round++) {
    const sample = Array.from({ length: SAMPLES }, () => keys[Math.floor(rand() * keys.length)])
    if (round === 0) distinct = new Set(sample).size
    if (warm) {
      for (const k of sample.slice(0, SAMPLES / 4)) {
        ours(k)
        plain(k)
      }
    }
    oursR.push(percentiles(ours, sample))
    theirsR.push(percentiles(plain, sample))
  }
  return { medians: [median3(oursR, 0), median3(oursR, 1), median3(theirsR, 0), median3(theirsR, 1)], distinct }
}

// One line of the table: [p50, p99, by hand p50, by hand p99], the ratios
// (by hand ÷ irontoken: above 1 irontoken is faster), then `tail`.
function row(label, [o50, o99, t50, t99], tail) {
  console.log(
    `  ${label.padStart(9)} ${o50.toFixed(2).padStart(14)} ${o99.toFixed(2).padStart(7)} ${t50.toFixed(2).padStart(12)} ${t99.toFixed(2).padStart(7)} ${(t50 / o50).toFixed(2).padStart(7)}x / ${(t99 / o99).toFixed(2)}x${tail}`,
  )
}

main()
