// An Express service guarded by irontoken: API keys and Bearer JWTs.
import express from 'express'
import type { Server } from 'node:http'
import { JwtVerifier, TokenManager } from 'irontoken'
import { recordLlmUsage, requireApiKey, requireJwt } from 'irontoken/express'

export function app(tm: TokenManager, verifier: JwtVerifier): express.Express {
  const server = express()
  server.get('/items', requireApiKey(tm, { scopes: ['read'] }), (req, res) => {
    const record = req.irontoken as import('irontoken').KeyRecord // the key's record
    res.json({ owner: record.owner, items: ['a', 'b'] })
  })
  server.post('/chat', requireApiKey(tm, { scopes: ['chat'] }), async (req, res, next) => {
    try {
      // ...call the model, then record what it used; a retried request
      // (same X-Request-ID) counts once.
      const counted = await recordLlmUsage(tm, req, { model: 'gpt-4o', promptTokens: 12, completionTokens: 30 })
      res.json({ counted })
    } catch (e) {
      next(e)
    }
  })
  server.post('/admin/keys', (req, res) => {
    // burst defaults to count; the plaintext is read explicitly (JSON.stringify(created) hides it).
    const created = tm.createKey({ owner: 'dave', rateLimits: [{ name: 'per_minute', count: 60, periodMs: 60_000 }] })
    res.status(201).json({ key: created.key, id: created.record.id })
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
