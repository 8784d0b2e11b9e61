'use strict'
// Spend alerts through the Node.js binding: quota levels chosen in the
// manager's options, the alert webhook delivering each alert once to a local
// HTTP server (signed; retried after a 500), verifyWebhookSignature and
// node:crypto agreeing on the signature, and bad settings refused.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const crypto = require('node:crypto')

const { TokenManager, verifyWebhookSignature } = require('..')

const SECRET = 'node-webhook-secret-0123'

function hook() {
  const got = []
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks) })
      res.writeHead(got.length === 1 ? 500 : 200, { 'Content-Length': '0' })
      res.end()
    })
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${server.address().port}/hook`, got, server })),
  )
}

test('quota levels and the webhook: each alert once, signed, retried after a 500', async () => {
  const { url, got, server } = await hook()
  const tm = new TokenManager(':memory:', {
    alerts: { quotaLevels: [50, 100], webhook: { url, secret: SECRET, backoffMs: 20 } },
  })
  const keyId = tm.createKey({ owner: 'acme' }).record.id
  tm.setQuota({ subject: keyId, metric: 'tokens', period: 'day', limit: 100 })
  tm.consumeQuota(keyId, { tokens: 60 })
  tm.consumeQuota(keyId, { tokens: 40 })
  const levels = tm.drainEvents().filter((e) => e.kind === 'quota_threshold').map((e) => e.detail.level)
  assert.deepEqual(levels, [50, 100])
  const deadline = Date.now() + 10_000
  while (!tm.metrics().includes('irontoken_webhook_deliveries_total{outcome="delivered"} 2')) {
    assert.ok(Date.now() < deadline, tm.metrics())
    await new Promise((r) => setTimeout(r, 10))
  }
  tm.close()
  server.close()
  assert.equal(got.length, 3)
  const ids = got.map((h) => h.headers['irontoken-event-id'])
  assert.equal(ids[0], ids[1])
  assert.notEqual(ids[1], ids[2])
  for (const h of got) {
    const sig = h.headers['irontoken-signature']
    verifyWebhookSignature(SECRET, sig, h.body)
    const [t, v1] = sig.split(',').map((p) => p.split('=')[1])
    const mac = crypto.createHmac('sha256', SECRET).update(`${t}.`).update(h.body).digest('hex')
    assert.equal(mac, v1, 'node:crypto agrees')
  }
  assert.deepEqual(got.slice(1).map((h) => JSON.parse(h.body).detail.level), [50, 100])
  const sig = got[0].headers['irontoken-signature']
  assert.throws(() => verifyWebhookSignature(SECRET, sig, Buffer.concat([got[0].body, Buffer.from(' ')])), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => verifyWebhookSignature('another secret!!', sig, got[0].body), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => verifyWebhookSignature(SECRET, sig, got[0].body, { now: Math.floor(Date.now() / 1000) + 3600 }), {
    code: 'INVALID_ARGUMENT',
  })
})

test('bad alert settings are refused, without the secret in the message', () => {
  for (const alerts of [
    { quotaLevels: [100, 50] },
    { spikeFactor: 0.5 },
    { webhook: { url: 'http://example.com/hook', secret: SECRET } },
    { webhook: { url: 'https://example.com/hook', secret: 'short' } },
    { bogus: 1 },
  ]) {
    assert.throws(
      () => new TokenManager(':memory:', { alerts }),
      (e) => e.code === 'INVALID_ARGUMENT' && !e.message.includes(SECRET),
    )
  }
})
