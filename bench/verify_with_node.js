'use strict'
// The cost of a Node verification by call form: verifyKey (the record parsed
// only when read), verifyKeyWith with no options, with rate limiting, with
// required scopes, and tryVerifyKeyWith — one key in `:memory:`, 200 000
// calls per line after 20 000 warm-up calls, two rounds.
// Run: `node bench/verify_with_node.js`.

const { TokenManager } = require('../node')

const tm = new TokenManager(':memory:')
const key = tm.createKey({ owner: 'bench', scopes: ['read'] }).key
const N = 200_000

function time(name, f) {
  for (let i = 0; i < 20_000; i++) f()
  const t = process.hrtime.bigint()
  for (let i = 0; i < N; i++) f()
  console.log(`  ${name.padEnd(44)} ${(Number(process.hrtime.bigint() - t) / N / 1000).toFixed(2)} µs`)
}

console.log(`verification call forms (Node ${process.version}), µs per call`)
for (let r = 0; r < 2; r++) {
  time('verifyKey(key)', () => tm.verifyKey(key))
  time('verifyKey(key).record', () => tm.verifyKey(key).record)
  time('verifyKeyWith(key)', () => tm.verifyKeyWith(key))
  time('verifyKeyWith(key, { rateLimit })', () => tm.verifyKeyWith(key, { rateLimit: true }))
  time('verifyKeyWith(key, { requiredScopes, rateLimit })', () =>
    tm.verifyKeyWith(key, { requiredScopes: ['read'], rateLimit: true }),
  )
  time('tryVerifyKeyWith(key, { rateLimit })', () => tm.tryVerifyKeyWith(key, { rateLimit: true }))
}
tm.close()
