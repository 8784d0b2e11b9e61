'use strict'
// Side-by-side: JWT verify from Node, irontoken vs jose and fast-jwt (cache
// off), keys parsed once, one process. Run: `make bench-compare`.

const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')

const NODE_PKG = path.join(__dirname, '..', 'node')
const need = (m) => require(require.resolve(m, { paths: [NODE_PKG] }))
const { createVerifier, createSigner } = need('fast-jwt')
const { jwtSign, jwtVerify, JwtVerifier, JwtSigner } = require(NODE_PKG)
const jsonwebtoken = need('jsonwebtoken')

const KEYS = path.join(__dirname, '..', 'tests', 'vectors', 'jwt', 'keys')
const read = (f) => fs.readFileSync(path.join(KEYS, f), 'utf8')
const NOW = Math.floor(Date.now() / 1000)
const SECRET = 'irontoken-test-hmac-secret-of-32-bytes!!'
const CLAIMS = { sub: 'user-1', iss: 'https://issuer.test', exp: NOW + 3600, iat: NOW, scope: 'read write' }

const { measureSync, measureAsync } = require('./_measure')

// [algorithm, signing key, verifying key] of each algorithm measured.
const KEYPAIRS = [
  ['HS256', SECRET, SECRET],
  ['RS256', read('rsa_private.pem'), read('rsa_public.pem')],
  ['ES256', read('ec_p256_private.pem'), read('ec_p256_public.pem')],
  ['EdDSA', read('ed25519_private.pem'), read('ed25519_public.pem')],
]

async function main() {
  const jose = await import(require.resolve('jose', { paths: [NODE_PKG] }))
  const rows = []
  for (const [alg, priv, pub] of KEYPAIRS) {
    const token = jwtSign(CLAIMS, priv, { algorithm: alg })
    const ours = new JwtVerifier(pub, { algorithms: [alg] })
    const joseKey = alg === 'HS256' ? new TextEncoder().encode(pub) : crypto.createPublicKey(pub)
    const fast = createVerifier({ key: pub, algorithms: [alg], cache: false })
    const n = alg === 'HS256' ? 20000 : 4000
    const a = measureSync(() => ours.verify(token), n)
    const b = await measureAsync(() => jose.jwtVerify(token, joseKey), n)
    const c = measureSync(() => fast(token), n)
    const fastSign = createSigner({ key: priv, algorithm: alg })
    const signer = new JwtSigner(priv, { algorithm: alg })
    const d = measureSync(() => signer.sign(CLAIMS), n / 4)
    const e = measureSync(() => fastSign(CLAIMS), n / 4)
    rows.push([alg, a, b, c, d, e])
  }
  console.log('JWT from Node, median µs per call (keys parsed once: JwtVerifier / JwtSigner, fast-jwt verifier/signer)')
  console.log(`  ${'alg'.padEnd(6)} ${'verify irontoken'.padStart(17)} ${'verify jose'.padStart(12)} ${'verify fast-jwt'.padStart(16)} ${'sign irontoken'.padStart(15)} ${'sign fast-jwt'.padStart(14)}`)
  for (const [alg, a, b, c, d, e] of rows) {
    console.log(`  ${alg.padEnd(6)} ${a.toFixed(2).padStart(17)} ${b.toFixed(2).padStart(12)} ${c.toFixed(2).padStart(16)} ${d.toFixed(2).padStart(15)} ${e.toFixed(2).padStart(14)}`)
  }
  await oneShot()
}

// One-shot calls as users write them: the key (PEM text or secret) passed
// on every call. irontoken caches parsed keys by content; jsonwebtoken
// parses the PEM each time.
async function oneShot() {
  const rows = []
  for (const [alg, priv, pub] of KEYPAIRS) {
    const token = jwtSign(CLAIMS, priv, { algorithm: alg })
    const n = alg === 'HS256' ? 20000 : 4000
    const a = measureSync(() => jwtVerify(token, pub, { algorithms: [alg] }), n)
    const jwtAlg = alg === 'EdDSA' ? null : alg
    const b = jwtAlg ? measureSync(() => jsonwebtoken.verify(token, pub, { algorithms: [jwtAlg] }), n) : NaN
    const c = measureSync(() => jwtSign(CLAIMS, priv, { algorithm: alg }), n / 4)
    const d = jwtAlg ? measureSync(() => jsonwebtoken.sign(CLAIMS, priv, { algorithm: jwtAlg }), n / 4) : NaN
    rows.push([alg, a, b, c, d])
  }
  console.log('One-shot JWT calls, key passed every call (median µs; jsonwebtoken has no EdDSA)')
  console.log(`  ${'alg'.padEnd(6)} ${'jwtVerify irontoken'.padStart(20)} ${'verify jsonwebtoken'.padStart(20)} ${'jwtSign irontoken'.padStart(18)} ${'sign jsonwebtoken'.padStart(18)}`)
  for (const [alg, a, b, c, d] of rows) {
    console.log(`  ${alg.padEnd(6)} ${a.toFixed(2).padStart(20)} ${b.toFixed(2).padStart(20)} ${c.toFixed(2).padStart(18)} ${d.toFixed(2).padStart(18)}`)
  }
}

main()
