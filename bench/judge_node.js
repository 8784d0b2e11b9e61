'use strict'
// What the Express/Fastify middleware pay per request: apiKeyJudge (the
// shared core of irontoken/express and irontoken/fastify) on SQLite, a key
// without limits, rate limiting on (the default) — answered on the JS
// thread (tryVerifyKeyWith), against the same call forced through the libuv
// pool. Medians of 5 interleaved rounds. Run: `make bench-compare`.

const { TokenManager } = require('../node')
const { apiKeyJudge } = require('../node/adapters.js')

async function rounds(judge, key, n) {
  const t = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await judge(key)
  return Number(process.hrtime.bigint() - t) / n / 1000
}

async function main() {
  const tm = new TokenManager(':memory:')
  const key = tm.createKey({ owner: 'bench' }).key
  const inline = apiKeyJudge(tm, {})
  const pooled = new TokenManager(':memory:')
  const pooledKey = pooled.createKey({ owner: 'bench' }).key
  pooled.tryVerifyKeyWith = () => null // as before: every call through the pool
  const viaPool = apiKeyJudge(pooled, {})
  const res = { inline: [], pool: [] }
  for (let r = 0; r < 5; r++) {
    res.inline.push(await rounds(inline, key, 20000))
    res.pool.push(await rounds(viaPool, pooledKey, 5000))
  }
  const median = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)]
  console.log(`apiKeyJudge per request (Node ${process.version}), medians of 5 interleaved rounds`)
  console.log(`  answered on the JS thread            ${median(res.inline).toFixed(2)} µs`)
  console.log(`  through the libuv pool (before)      ${median(res.pool).toFixed(2)} µs`)
}

main()
