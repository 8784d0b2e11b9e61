'use strict'
// Express middleware: API keys and Bearer JWTs checked by irontoken (see
// adapters.js for the answers). `req.irontoken` carries the key's record
// (requireApiKey) or the token's claims (requireJwt).
//
//   const { requireApiKey } = require('irontoken/express')
//   app.get('/items', requireApiKey(tm, { scopes: ['read'], quota: { requests: 1 } }), handler)

const { apiKeyJudge, jwtJudge, recordLlmUsage } = require('./adapters.js')

function send(res, answer) {
  res.status(answer.status).set(answer.headers).json(answer.body)
}

/** Middleware verifying the API key in `options.header` (default X-API-Key). */
function requireApiKey(manager, options = {}) {
  const judge = apiKeyJudge(manager, options)
  return function irontokenApiKey(req, res, next) {
    judge(req.get(judge.header), req.originalUrl).then((answer) => {
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

/** Middleware verifying the `Authorization: Bearer` JWT. */
function requireJwt(verifier, options = {}) {
  const judge = jwtJudge(verifier, options)
  return function irontokenJwt(req, res, next) {
    judge(req.get('authorization'), req.originalUrl).then((answer) => {
      if (answer.claims) {
        req.irontoken = answer.claims
        next()
      } else {
        send(res, answer)
      }
    }, next)
  }
}

module.exports = { requireApiKey, requireJwt, recordLlmUsage }
