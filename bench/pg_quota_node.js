'use strict'
// Side by side, issue 33: Node's async consumeQuotaAsync on PostgreSQL
// against node-postgres (`pg`) sending the hand-written single statement,
// one call at a time (each awaited), interleaved rounds, medians.
//
// - irontoken consumeQuotaAsync on a key whose only quota is its own (the
//   one-row fast path);
// - pg, prepared: UPDATE q SET used = used + 1 WHERE k = $1 AND used + 1 <=
//   lim RETURNING used on a narrow table, synchronous_commit off (as
//   irontoken's quota commits);
// - pg, the same UPDATE on irontoken's own quotas row, for scale.
// Needs PostgreSQL (IRONTOKEN_TEST_POSTGRES_URL) and pg in target/bench-node
// (`make bench-compare` installs it). Run: `node bench/pg_quota_node.js`.

const path = require('node:path')
const crypto = require('node:crypto')

const { TokenManager } = require(path.join(__dirname, '..', 'node'))
const { Client } = require(path.join(__dirname, '..', 'target', 'bench-node', 'node_modules', 'pg'))

const PG = process.env.IRONTOKEN_TEST_POSTGRES_URL || 'postgresql://postgres@127.0.0.1:5432/test'
const ROUNDS = 15
const CALLS = 1500

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1]
}

async function main() {
  const schema = 'itk_bench_qn_' + crypto.randomBytes(4).toString('hex')
  const admin = new Client({ connectionString: PG })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  try {
    const url = `${PG}${PG.includes('?') ? '&' : '?'}options=-csearch_path%3D${schema}`
    const tm = new TokenManager(url)
    const kid = tm.createKey({ owner: 'o' }).record.id
    const other = tm.createKey({ owner: 'p' }).record.id
    for (const k of [kid, other]) tm.setQuota({ subject: k, metric: 'requests', period: 'month', limit: 2 ** 52 })
    const c = new Client({ connectionString: PG })
    await c.connect()
    await c.query(`SET search_path = ${schema}`)
    await c.query('SET synchronous_commit = off')
    await c.query('CREATE TABLE q (k text PRIMARY KEY, used bigint, lim bigint)')
    await c.query('INSERT INTO q VALUES ($1, 0, $2)', ['k', 2 ** 52])
    const rows = [
      ['irontoken consumeQuotaAsync, PostgreSQL', () => tm.consumeQuotaAsync(kid, { requests: 1 })],
      // The same call blocking the event loop: what is left is the hop to
      // libuv's thread pool and back.
      ['irontoken consumeQuota (synchronous), PostgreSQL', async () => tm.consumeQuota(kid, { requests: 1 })],
      [
        'pg UPDATE ... RETURNING (narrow table)',
        () =>
          c.query({
            name: 'narrow',
            text: 'UPDATE q SET used = used + 1 WHERE k = $1 AND used + 1 <= lim RETURNING used',
            values: ['k'],
          }),
      ],
      [
        "pg UPDATE ... RETURNING (irontoken's quotas row)",
        () =>
          c.query({
            name: 'quotas',
            text:
              "UPDATE quotas SET used = used + 1 WHERE scope = 'key' AND subject = $1 " +
              'AND used + 1 <= limit_amount RETURNING used',
            values: [other],
          }),
      ],
    ]
    const res = new Map(rows.map(([n]) => [n, []]))
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, f] of rows) {
        const t = process.hrtime.bigint()
        for (let i = 0; i < CALLS; i++) await f()
        res.get(name).push(Number(process.hrtime.bigint() - t) / CALLS / 1000)
      }
    }
    console.log(`consumeQuotaAsync on PostgreSQL from Node, medians of ${ROUNDS} interleaved rounds`)
    const base = median(res.get(rows[2][0]))
    for (const [name] of rows) {
      const m = median(res.get(name))
      console.log(`  ${name.padEnd(52)} ${m.toFixed(1).padStart(8)} µs  (${(base / m).toFixed(2)}x the narrow pg UPDATE's speed)`)
    }
    await c.end()
    tm.close()
  } finally {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
