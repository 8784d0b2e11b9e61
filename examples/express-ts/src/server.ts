// An Express service guarded by irontoken: API keys and Bearer JWTs.
import express from 'express'
import type { Server } from 'node:http'
import { JwtVerifier, TokenManager } from 'irontoken'
import { requireApiKey, requireJwt } from 'irontoken/express'

export function app(tm: TokenManager, verifier: JwtVerifier): express.Express {
  const server = express()
  server.get('/items', requireApiKey(tm, { scopes: ['read'] }), (req, res) => {
    const record = req.irontoken as import('irontoken').KeyRecord // the key's record
    res.json({ owner: record.owner, items: ['a', 'b'] })
  })
  server.get('/me', requireJwt(verifier, { scopes: ['profile'] }), (req, res) => {
    const claims = req.irontoken as Record<string, unknown> // the token's claims
    res.json({ sub: claims.sub })
  })
  return server
}

export function listen(server: express.Express): Promise<Server> {
  return new Promise((resolve) => {
    const s = server.listen(0, '127.0.0.1', () => resolve(s))
  })
}
