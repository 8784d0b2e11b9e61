'use strict'
// Express middleware: API keys and Bearer JWTs checked by irontoken (see
// adapters.js for the answers). `req.irontoken` carries the key's record
// (requireApiKey), the token's claims (requireJwt) or the capability's
// Authorization (requireCapability).
//
//   const { requireApiKey } = require('irontoken/express')
//   app.get('/items', requireApiKey(tm, { scopes: ['read'], quota: { requests: 1 } }), handler)

const { apiKeyJudge, jwtJudge, capabilityJudge, recordLlmUsage } = require('./adapters.js')

function send(res, answer) {
  res.status(answer.status).set(answer.headers).json(answer.body)
}

/** Middleware verifying the API key in `options.header` (default X-API-Key). */
function requireApiKey(manager, options = {}) {
  const judge = apiKeyJudge(manager, options)
  return function irontokenApiKey(req, res, next) {
    judge(req.get(judge.header), req.originalUrl, req).then((answer) => {
      if (answer.record) {
        res.set(answer.headers)
        req.irontoken = answer.record
        next()
      } else {
        send(res, answer)
      }
    }, next)
  }
}

// What a JWT judge reads of an Express request (the URL as the client saw
// it: set `trust proxy` behind a proxy so protocol and host are right).
function infoOf(req) {
  return {
    method: req.method,
    href: `${req.protocol}://${req.get('host')}${req.originalUrl}`,
    dpop: (req.headersDistinct && req.headersDistinct.dpop) || req.headers.dpop,
    header: (name) => req.get(name),
  }
}

/** Middleware verifying the request's JWT (`Authorization: Bearer`, or `DPoP` with `{ dpop: true }`). */
function requireJwt(verifier, options = {}) {
  const judge = jwtJudge(verifier, options)
  return function irontokenJwt(req, res, next) {
    judge(req.get('authorization'), req.originalUrl, req, infoOf(req)).then((answer) => {
      if (answer.claims) {
        res.set(answer.headers)
        req.irontoken = answer.claims
        next()
      } else {
        send(res, answer)
      }
    }, next)
  }
}

/**
 * Middleware authorizing a call of `options.tool` under the capability token
 * in `Authorization: Bearer`, charging `costMicros` when allowed;
 * `req.irontoken` is the Authorization.
 */
function requireCapability(manager, options) {
  const judge = capabilityJudge(manager, options)
  return function irontokenCapability(req, res, next) {
    judge(req.get('authorization'), req.originalUrl, req).then((answer) => {
      if (answer.authorization) {
        req.irontoken = answer.authorization
        next()
      } else {
        send(res, answer)
      }
    }, next)
  }
}

module.exports = { requireApiKey, requireJwt, requireCapability, recordLlmUsage }
