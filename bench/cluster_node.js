'use strict'
// Side-by-side, issue 11, from Node: the PostgreSQL store and shared rate
// limits on this machine's PostgreSQL and Redis.
// - verifyKey of random keys out of 10 000: SQLite file, PostgreSQL with the
//   change-notified cache, PostgreSQL strict (one round trip);
// - quota consumption: consumeQuotaAsync on PostgreSQL against node-postgres
//   running `UPDATE q SET used = used + 1 WHERE k = $1 AND used + 1 <= lim
//   RETURNING used` (synchronous_commit off, like irontoken's quota commits);
// - rate limit checks: irontoken on Redis (sync and tm.rateLimitAsync)
//   against rate-limiter-flexible's RateLimiterRedis (ioredis) on the same Redis.
// Needs PostgreSQL and Redis. Run: `make bench-compare`.

const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { TokenManager, RateLimiter } = require('../node')
const { Client } = require('../node/node_modules/pg')
const Redis = require('../node/node_modules/ioredis')
const { RateLimiterRedis } = require('../node/node_modules/rate-limiter-flexible')
const { measureSync, measureAsync } = require('./_measure')

const PG = process.env.IRONTOKEN_TEST_POSTGRES_URL || 'postgresql://postgres@127.0.0.1:5432/test'
const REDIS = process.env.IRONTOKEN_TEST_REDIS_URL || 'redis://127.0.0.1:6379'
const N = 10_000

async function main() {
  const schema = `itk_bench_node_${process.pid}`
  const admin = new Client({ connectionString: PG })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  const redis = new Redis(REDIS)
  try {
    await run(schema, redis)
  } finally {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
    redis.disconnect()
  }
}

async function run(schema, redis) {
  const url = `${PG}${PG.includes('?') ? '&' : '?'}options=-csearch_path%3D${schema}`
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'itk-bench-'))
  const sqlite = new TokenManager(path.join(dir, 'bench.db'), { durability: 'normal' })
  const pg = new TokenManager(url)
  const strict = new TokenManager(url, { strict: true })
  const many = Array.from({ length: N }, () => ({ owner: 'o' }))
  const keysSqlite = sqlite.createKeys(many).map((c) => c.key)
  const keysPg = pg.createKeys(many).map((c) => c.key)
  await new Promise((r) => setTimeout(r, 2000)) // the listener takes in the creation notices
  for (const k of keysSqlite) sqlite.verifyKey(k)
  for (const k of keysPg) pg.verifyKey(k)
  const pick = (keys) => keys[Math.floor(Math.random() * N)]

  const kid = pg.createKey({ owner: 'acme' }).record.id
  pg.setQuota({ scope: 'key', subject: kid, metric: 'requests', period: 'month', limit: 2 ** 50 })
  const hand = new Client({ connectionString: url })
  await hand.connect()
  await hand.query('SET synchronous_commit = off')
  await hand.query('CREATE TABLE q (k text PRIMARY KEY, used bigint, lim bigint)')
  await hand.query("INSERT INTO q VALUES ('k', 0, $1)", [2 ** 50])
  const update = { name: 'consume', text: 'UPDATE q SET used = used + 1 WHERE k = $1 AND used + 1 <= lim RETURNING used', values: ['k'] }

  const limit = [{ name: 'rps', count: 1e9, periodMs: 1000 }]
  const rl = new RateLimiter({ limits: limit, store: `${REDIS}?key_prefix=itk-bench-node-${process.pid}:` })
  const pgRedis = new TokenManager(':memory:', { rateLimitStore: `${REDIS}?key_prefix=itk-bench-node-${process.pid}:` })
  const flexible = new RateLimiterRedis({ storeClient: redis, points: 1e9, duration: 1, keyPrefix: `flex-${process.pid}` })

  const rows = [
    ['verifyKey, SQLite file (10k keys, random)', () => measureSync(() => sqlite.verifyKey(pick(keysSqlite)), 20000)],
    ['verifyKey, PostgreSQL + notified cache', () => measureSync(() => pg.verifyKey(pick(keysPg)), 20000)],
    ['verifyKeyAsync, PostgreSQL + notified cache', () => measureAsync(() => pg.verifyKeyAsync(pick(keysPg)), 20000)],
    ['verifyKeyAsync, SQLite file', () => measureAsync(() => sqlite.verifyKeyAsync(pick(keysSqlite)), 20000)],
    ['verifyKey, PostgreSQL strict (1 round trip)', () => measureSync(() => strict.verifyKey(pick(keysPg)), 2000)],
    ['consumeQuotaAsync, PostgreSQL', () => measureAsync(() => pg.consumeQuotaAsync(kid, { requests: 1 }), 2000)],
    ['consumeQuota (sync), PostgreSQL', () => measureSync(() => pg.consumeQuota(kid, { requests: 1 }), 2000)],
    ['node-postgres UPDATE ... RETURNING', () => measureAsync(() => hand.query(update), 2000)],
    ['RateLimiter.check, Redis (sync, 1 round trip)', () => measureSync(() => rl.check('client'), 2000)],
    ['tm.rateLimitAsync, Redis', () => measureAsync(() => pgRedis.rateLimitAsync('client-async', limit), 2000)],
    ['rate-limiter-flexible RateLimiterRedis.consume', () => measureAsync(() => flexible.consume('client'), 2000)],
  ]
  const results = rows.map(() => [])
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < rows.length; i++) results[i].push(await rows[i][1]())
  }
  console.log(`PostgreSQL + Redis (Node ${process.version}), medians of 5 interleaved rounds`)
  rows.forEach(([name], i) => {
    const v = results[i].sort((a, b) => a - b)[2]
    console.log(`  ${name.padEnd(52)} ${v.toFixed(2).padStart(9)} µs/op`)
  })
  await hand.end()
  for (const tm of [sqlite, pg, strict, pgRedis]) tm.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
