// The other side of the capability interop test (test/capability.test.js):
// @biscuit-auth/biscuit-wasm, run as its own process because it loads its
// WebAssembly as an ES module (node --experimental-wasm-modules).
//   node --experimental-wasm-modules biscuit_wasm.mjs '{"op": "authorize" | "append", ...}'
// authorize: {token, publicKey, tool} → {"allowed": bool}
// append:    {token, publicKey, code} → {"token": "..."}
import * as bw from '@biscuit-auth/biscuit-wasm'

const req = JSON.parse(process.argv[2])
// This release reads a root key as bare hex (irontoken prints `ed25519/<hex>`).
const root = bw.PublicKey.fromString(req.publicKey.replace(/^ed25519\//, ''))
const token = bw.Biscuit.fromBase64(req.token, root)
let out
if (req.op === 'authorize') {
  const az = token.getAuthorizer()
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  az.addCode(`tool(${JSON.stringify(req.tool)}); cost(0); time(${now}); allow if true;`)
  try {
    az.authorizeWithLimits({ max_facts: 1000, max_iterations: 100, max_time_micro: 2_000_000 })
    out = { allowed: true }
  } catch (e) {
    out = { allowed: false, error: e }
  }
} else {
  const block = new bw.BlockBuilder()
  block.addCode(req.code)
  out = { token: token.appendBlock(block).toBase64() }
}
process.stdout.write(JSON.stringify(out))
