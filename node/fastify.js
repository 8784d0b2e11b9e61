'use strict'
// Fastify: the same checks as irontoken/express (see adapters.js), as
// preHandler hooks for route options and as a plugin that guards every route
// of the scope it is registered in. `request.irontoken` carries the key's
// record or the token's claims.
//
//   const { requireApiKey } = require('irontoken/fastify')
//   app.get('/items', { preHandler: requireApiKey(tm, { scopes: ['read'] }) }, handler)
//   app.register(async (scope) => {
//     scope.register(require('irontoken/fastify'), { manager: tm, scopes: ['read'] })
//     scope.get('/items', handler)
//   })

const { apiKeyJudge, jwtJudge, capabilityJudge, recordLlmUsage } = require('./adapters.js')

// What a JWT judge reads of a Fastify request.
function infoOf(request) {
  const raw = request.raw || {}
  return {
    method: request.method,
    href: `${request.protocol}://${request.headers.host}${request.url}`,
    dpop: (raw.headersDistinct && raw.headersDistinct.dpop) || request.headers.dpop,
    header: (name) => request.headers[String(name).toLowerCase()],
  }
}

function hook(judge, headerName, field) {
  return async function irontokenPreHandler(request, reply) {
    const answer = await judge(request.headers[headerName], request.url, request, infoOf(request))
    if (answer[field]) {
      if (answer.headers) reply.headers(answer.headers)
      request.irontoken = answer[field]
      return
    }
    reply.code(answer.status).headers(answer.headers).send(answer.body)
    return reply
  }
}

/** A preHandler verifying the API key in `options.header` (default X-API-Key). */
function requireApiKey(manager, options = {}) {
  const judge = apiKeyJudge(manager, options)
  return hook(judge, judge.header, 'record')
}

/** A preHandler verifying the request's JWT (`Authorization: Bearer`, or `DPoP` with `{ dpop: true }`). */
function requireJwt(verifier, options = {}) {
  return hook(jwtJudge(verifier, options), 'authorization', 'claims')
}

/** A preHandler authorizing a call of `options.tool` under the Bearer capability token (`request.irontoken` is the Authorization). */
function requireCapability(manager, options) {
  return hook(capabilityJudge(manager, options), 'authorization', 'authorization')
}

/** The plugin: `{ manager, scopes, header, rateLimit, quota }` guards the routes of its scope. */
async function irontokenFastify(fastify, options) {
  const { manager, ...rest } = options
  for (const k of ['prefix', 'logLevel', 'logSerializers']) delete rest[k]
  if (!fastify.hasRequestDecorator('irontoken')) fastify.decorateRequest('irontoken', null)
  fastify.addHook('preHandler', requireApiKey(manager, rest))
}

// Like fastify-plugin: the hook belongs to the scope that registers the
// plugin, not to a scope of its own (which would guard no route).
irontokenFastify[Symbol.for('skip-override')] = true
irontokenFastify[Symbol.for('fastify.display-name')] = 'irontoken'

module.exports = irontokenFastify
module.exports.default = irontokenFastify
module.exports.irontokenFastify = irontokenFastify
module.exports.requireApiKey = requireApiKey
module.exports.requireJwt = requireJwt
module.exports.requireCapability = requireCapability
module.exports.recordLlmUsage = recordLlmUsage
