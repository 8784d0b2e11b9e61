'use strict'
// Side-by-side: verifying RS256 and ES256 tokens against a remote JWKS from
// Node, set cached (one fetch), irontoken createRemoteJWKSet vs jose's.
// Run: `node bench/remote_jwks_node.js` (after `make node`).

const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const crypto = require('node:crypto')

const NODE_PKG = path.join(__dirname, '..', 'node')
const { jwtSign, jwtVerify, createRemoteJWKSet } = require(NODE_PKG)

const KEYS = path.join(__dirname, '..', 'tests', 'vectors', 'jwt', 'keys')
const NOW = Math.floor(Date.now() / 1000)

const { measureAsync: measure } = require('./_measure')

async function main() {
  const jose = await import(require.resolve('jose', { paths: [NODE_PKG] }))
  const pairs = [['RS256', 'rsa'], ['ES256', 'ec_p256']]
  const keys = pairs.map(([alg, name]) => ({
    ...crypto.createPublicKey(fs.readFileSync(path.join(KEYS, `${name}_public.pem`))).export({ format: 'jwk' }),
    kid: name, alg, use: 'sig',
  }))
  const body = JSON.stringify({ keys })
  const server = http.createServer((req, res) => res.end(body))
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${server.address().port}/jwks.json`
  const ours = createRemoteJWKSet(url)
  const theirs = jose.createRemoteJWKSet(new URL(url))
  console.log('Remote JWKS verify from Node, set cached, median µs per call')
  console.log(`  ${'alg'.padEnd(6)} ${'irontoken'.padStart(10)} ${'jose'.padStart(8)}`)
  for (const [alg, name] of pairs) {
    const priv = fs.readFileSync(path.join(KEYS, `${name}_private.pem`))
    const token = jwtSign({ sub: 'u', exp: NOW + 3600, iat: NOW }, priv, { algorithm: alg, kid: name })
    await jwtVerify(token, ours, { algorithms: [alg] })
    await jose.jwtVerify(token, theirs)
    const a = await measure(() => jwtVerify(token, ours, { algorithms: [alg] }), 4000)
    const b = await measure(() => jose.jwtVerify(token, theirs, { algorithms: [alg] }), 4000)
    console.log(`  ${alg.padEnd(6)} ${a.toFixed(2).padStart(10)} ${b.toFixed(2).padStart(8)}`)
  }
  server.close()
}

main()
