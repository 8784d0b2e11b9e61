'use strict'
// A Fastify service: the irontoken plugin guards a scope, a preHandler one route.
const Fastify = require('fastify')
const irontoken = require('irontoken/fastify')

function build(tm) {
  const app = Fastify({ logger: false })
  app.register(async (api) => {
    api.register(irontoken, { manager: tm, scopes: ['read'] })
    api.get('/api/items', async (request) => ({ owner: request.irontoken.owner, items: ['a', 'b'] }))
  })
  app.get('/admin', { preHandler: irontoken.requireApiKey(tm, { scopes: ['admin'] }) }, async (request) => ({
    admin: request.irontoken.owner,
  }))
  app.get('/health', async () => ({ ok: true })) // outside the guarded scope
  return app
}

module.exports = { build }
