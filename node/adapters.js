'use strict'
// What irontoken/express and irontoken/fastify share: judge a request's
// credential and say what to answer — never a 500 for a bad credential,
// never the credential in a body, a header or a log line.
//   401 missing, malformed, unknown, expired, disabled, revoked (WWW-Authenticate)
//   403 a required scope is missing
//   429 rate limit or quota (Retry-After, IETF RateLimit-Policy / RateLimit)
//   503 the store could not answer (STORAGE, BUSY; Retry-After: 1)
// Verification runs with the *Async calls: the event loop never waits on SQLite.

const { JwtVerifier, jwtVerify, isCredentialParam, upgradable, verifyOrUpgrade } = require('./index.js')
const { policyJson } = require('./lib/jwt.js')
const {
  requestIdFromHeader, httpApiKeyAnswer, httpBearerAnswer, httpCapabilityAnswer, httpDpopAnswer, httpLlmBodyFields, httpLlmRequest, tokenBinding,
} = require('./binding.js').load()

// Every status, message and header below is core's (irontoken::http), the
// same function the FastAPI adapter calls; here they only become a body.
function answerOf(a) {
  const headers = Object.fromEntries(a.headers)
  return a.status === 200 ? { headers } : { status: a.status, headers, body: { error: { code: a.code, message: a.message } } }
}

/** The IETF RateLimit-Policy and RateLimit headers of a key's limits and a check's answer. */
function rateLimitHeaders(limits, state) {
  if (!limits || limits.length === 0 || !state) return {}
  return answerOf(httpApiKeyAnswer('', [], { reason: 'VALID', limits, rateLimit: state })).headers
}

function unavailable(e) {
  // Core answers 503 with Retry-After for any code that is not a refusal.
  return answerOf(httpBearerAnswer(String(e.code), []))
}

// A credential in a URL lands in access logs, proxies and browser history,
// so a request carrying one is answered 400 (option refuseQueryCredentials,
// default true). The rule (names and shapes) is core's, as in FastAPI.
/** Whether the query string of `url` holds a credential-looking parameter (its name, or a value shaped like a key or a JWT). */
function credentialInQuery(url, header) {
  if (typeof url !== 'string') return false
  const q = url.indexOf('?')
  if (q < 0) return false
  let params
  try {
    params = new URLSearchParams(url.slice(q + 1).split('#')[0])
  } catch {
    return false
  }
  for (const [name, value] of params) {
    if (isCredentialParam(name, value, header)) return true
  }
  return false
}

const QUERY_REFUSAL = () => answerOf(httpBearerAnswer('CREDENTIAL_IN_QUERY', []))

function checkOptions(options, allowed) {
  for (const k of Object.keys(options)) {
    if (!allowed.includes(k)) {
      const e = new Error(`INVALID_ARGUMENT: unknown option ${JSON.stringify(k)} (${allowed.join(', ')})`)
      e.code = 'INVALID_ARGUMENT'
      throw e
    }
  }
}

// The body fields an LLM guard reads (core's list): only these go to core.
const LLM_FIELDS = httpLlmBodyFields()

// The tokens each request declared and its limits counted, for
// recordLlmUsage to settle against the actual count (once).
const declaredTokens = new WeakMap()

function badRequest(message) {
  return { status: 400, headers: {}, body: { error: { code: 'INVALID_ARGUMENT', message } } }
}

// The LLM fields of an Express or Fastify request's parsed JSON body; null
// when there is no parsed JSON object (no body parser before the guard).
function llmBody(req) {
  const body = req && req.body
  if (body === null || typeof body !== 'object' || Array.isArray(body) || Buffer.isBuffer(body)) return null
  return Object.fromEntries(LLM_FIELDS.filter((f) => body[f] !== undefined).map((f) => [f, body[f]]))
}

// The model and tokens a request declares, where the guard was told to
// read them: 'body' (an OpenAI-shaped JSON body) or a function of the
// request. The rule (which fields, what is valid, the 400 that fails
// closed rather than let a request past the allow-list) is core's.
async function llmOf(req, model, tokens) {
  const read = async (source) => {
    if (source === undefined) return ['', null]
    if (source === 'body') return ['body', null]
    const v = await source(req)
    // A value with no JSON form (a BigInt, a function) is neither a model
    // name nor a count: passed as one core refuses.
    return ['value', v === undefined ? null : ['bigint', 'function', 'symbol'].includes(typeof v) ? [] : v]
  }
  const [[modelFrom, modelValue], [tokensFrom, tokensValue]] = [await read(model), await read(tokens)]
  const body = modelFrom === 'body' || tokensFrom === 'body' ? llmBody(req) : null
  const got = httpLlmRequest(body, modelFrom, modelValue, tokensFrom, tokensValue)
  if (got.answer) return { answer: answerOf(got.answer) }
  const out = {}
  if (got.model != null) out.model = got.model
  if (got.tokens != null) out.tokens = got.tokens
  return { llm: out }
}

function checkSource(name, v) {
  if (v !== undefined && v !== 'body' && typeof v !== 'function') {
    const e = new Error(`INVALID_ARGUMENT: ${name} must be 'body' or a function of the request`)
    e.code = 'INVALID_ARGUMENT'
    throw e
  }
}

/**
 * A judge of API keys: `(headerValue, url, req) => Promise<{ record, headers } | { status, headers, body }>`.
 * Options: scopes, header (default 'x-api-key'), rateLimit (default true), quota (amounts),
 * model and tokens ('body' or `(req) => value`: the key's model policy and its limits in tokens).
 */
function apiKeyJudge(manager, options = {}) {
  if (!manager || typeof manager.verifyKeyWithAsync !== 'function') {
    const e = new Error('INVALID_ARGUMENT: manager must be a TokenManager')
    e.code = 'INVALID_ARGUMENT'
    throw e
  }
  checkOptions(options, ['scopes', 'header', 'rateLimit', 'quota', 'refuseQueryCredentials', 'legacyCheck', 'model', 'tokens'])
  checkSource('model', options.model)
  checkSource('tokens', options.tokens)
  const legacyCheck = options.legacyCheck
  if (legacyCheck !== undefined && typeof legacyCheck !== 'function') {
    const e = new Error('INVALID_ARGUMENT: legacyCheck must be a function (the old system\'s check)')
    e.code = 'INVALID_ARGUMENT'
    throw e
  }
  const header = String(options.header || 'X-API-Key')
  const refuseQuery = options.refuseQueryCredentials !== false
  const scopes = (options.scopes || []).map(String)
  const rateLimit = options.rateLimit !== false
  const quota = options.quota || undefined
  const { model, tokens } = options
  const judge = async (key, url, req) => {
    if (refuseQuery && credentialInQuery(url, header)) return QUERY_REFUSAL()
    if (typeof key !== 'string' || key === '') {
      return answerOf(httpApiKeyAnswer(header, scopes, { reason: 'MISSING' }))
    }
    let llm = {}
    if (model !== undefined || tokens !== undefined) {
      const read = await llmOf(req, model, tokens)
      if (read.answer) return read.answer
      llm = read.llm
    }
    const checks = { requiredScopes: scopes, rateLimit, quota, ...llm }
    let result
    try {
      result = await manager.verifyKeyWithAsync(key, checks)
      if (legacyCheck && !result.valid && upgradable(key, result.reason)) {
        // A key of the old system, imported on its first use (see verifyOrUpgrade).
        const upgraded = await verifyOrUpgrade(manager, key, legacyCheck, scopes)
        result = upgraded.valid && (rateLimit || quota || Object.keys(llm).length)
          ? await manager.verifyKeyWithAsync(key, checks)
          : upgraded
      }
    } catch (e) {
      if (e && (e.code === 'STORAGE' || e.code === 'BUSY')) return unavailable(e)
      if (e && e.code === 'INVALID_ARGUMENT') return badRequest(String(e.message).replace(/^INVALID_ARGUMENT: /, ''))
      throw e
    }
    const { record } = result
    if (result.valid && rateLimit && llm.tokens !== undefined && req && typeof req === 'object') {
      declaredTokens.set(req, llm.tokens)
    }
    if (result.valid && record && !((record.rateLimits || []).length && result.rateLimit)) {
      return { record, headers: {} } // nothing to say in headers: no call into core
    }
    const outcome = { reason: result.reason, now: manager.now() }
    if (record) outcome.limits = record.rateLimits
    if (result.rateLimit) outcome.rateLimit = result.rateLimit
    const denied = result.quota && result.quota.deniedBy
    if (denied && denied.resetAt != null) outcome.quotaResetAt = denied.resetAt
    const answer = answerOf(httpApiKeyAnswer(header, scopes, outcome))
    return answer.status === undefined && record ? { record, headers: answer.headers } : answer
  }
  judge.header = header.toLowerCase()
  return judge
}

// The scopes a token grants: its `scope` (space-separated) or `scp` claim.
// Only strings count: `scp: [["read"]]` grants nothing (String() would make it "read").
function scopesOf(payload) {
  for (const name of ['scope', 'scp']) {
    const v = payload[name]
    if (typeof v === 'string') return v.split(/\s+/).filter(Boolean)
    if (Array.isArray(v)) return v.filter((s) => typeof s === 'string')
  }
  return []
}

// The DPoP header(s) of a request: RFC 9449 wants exactly one.
function dpopHeaders(info) {
  const v = info.dpop
  if (Array.isArray(v)) return v
  return v == null ? [] : [v]
}

// The client certificate of a request: from the header a TLS-terminating
// proxy sets (trusting it is the caller's explicit choice), a function of
// the request, or by default the TLS socket's peer certificate (DER).
function clientCertOf(source, info, req) {
  if (typeof source === 'string') return info.header(source) || undefined
  if (typeof source === 'function') return source(req) || undefined
  const sock = req && (req.socket || (req.raw && req.raw.socket))
  if (sock && typeof sock.getPeerCertificate === 'function') {
    const c = sock.getPeerCertificate(false)
    if (c && c.raw) return c.raw
  }
  return undefined
}

function refusedAs(code) {
  const e = new Error(`${code}: the token was refused`)
  e.code = code
  return e
}

/**
 * A judge of JWTs: `(authorizationHeader, url, req, info) => Promise<{ claims } | refusal>`,
 * `info` = `{ method, href, dpop, header(name) }` from the framework.
 * `verifier`: a JwtVerifier (its policy set at construction), a RemoteJWKSet
 * (createRemoteJWKSet) or a TokenManager whose keys issued the token (then
 * options.algorithms, audience, issuer apply). options.scopes must all be in
 * the token's `scope` or `scp` claim. Bound tokens are not bearer tokens:
 * `cnf.jkt` needs a DPoP proof, `cnf["x5t#S256"]` the client certificate
 * (options.clientCert: a header name or a function of the request; default
 * the TLS socket). options.dpop: `Authorization: DPoP` and one `DPoP` proof
 * header, each proof accepted once (the manager, or options.replay);
 * options.dpopNonce() is the server's current nonce.
 */
function jwtJudge(verifier, options = {}) {
  checkOptions(options, ['scopes', 'algorithms', 'audience', 'issuer', 'clockTolerance', 'refuseQueryCredentials', 'dpop', 'replay', 'dpopNonce', 'clientCert'])
  const scopes = (options.scopes || []).map(String)
  const refuseQuery = options.refuseQueryCredentials !== false
  const local = verifier instanceof JwtVerifier
  const managed = verifier && typeof verifier.verifyJwtPresentedAsync === 'function'
  const dpop = options.dpop === true
  if (local && ['algorithms', 'audience', 'issuer', 'clockTolerance'].some((k) => options[k] !== undefined)) {
    const e = new Error('INVALID_ARGUMENT: with a JwtVerifier, give algorithms, audience, issuer and clockTolerance to the verifier')
    e.code = 'INVALID_ARGUMENT'
    throw e
  }
  if (dpop && !managed && !(options.replay && typeof options.replay.verifyDpopProofAsync === 'function')) {
    throw invalid('dpop: true needs a TokenManager as verifier or as options.replay (each proof is accepted once)')
  }
  if (options.dpopNonce !== undefined && (!dpop || typeof options.dpopNonce !== 'function')) {
    throw invalid('dpopNonce is a function, for dpop: true')
  }
  const policy = {
    algorithms: options.algorithms || ['RS256'],
    audience: options.audience,
    issuer: options.issuer,
    clockTolerance: options.clockTolerance,
  }
  // Built once: a per-request JSON of an unchanging policy is wasted work.
  const managedPolicy = managed ? policyJson(policy) : undefined
  const answer = dpop
    ? (code, nonce) => answerOf(httpDpopAnswer(String(code), scopes, nonce))
    : (code) => answerOf(httpBearerAnswer(String(code), scopes))
  return async (authorization, url, req, info) => {
    if (refuseQuery && credentialInQuery(url, 'authorization')) return QUERY_REFUSAL()
    const nonce = dpop && options.dpopNonce ? String(options.dpopNonce()) : undefined
    const m = typeof authorization === 'string' ? (dpop ? /^DPoP +(\S+) *$/i : /^Bearer +(\S+) *$/i).exec(authorization) : null
    if (!m) return answer('MISSING', nonce)
    const token = m[1]
    let proof
    if (dpop) {
      const proofs = info ? dpopHeaders(info) : []
      if (proofs.length !== 1) return answer('DPOP_PROOF_INVALID', nonce)
      proof = proofs[0]
    }
    const cert = info ? clientCertOf(options.clientCert, info, req) : undefined
    let payload
    try {
      if (managed) {
        const presented = { clientCert: cert }
        if (dpop) Object.assign(presented, { dpopProof: proof, htm: info.method, htu: info.href, dpopNonce: nonce })
        payload = (await verifier.verifyJwtPresentedAsync(token, managedPolicy, presented)).payload
      } else {
        payload = (local ? verifier.verify(token) : await jwtVerify(token, verifier, policy)).payload
        // The binding rule is core's: a certificate-bound token needs that
        // certificate, a key-bound one a proof of that key.
        const jkt = tokenBinding(payload, { clientCert: cert, proofGiven: dpop })
        if (dpop) {
          if (jkt == null) throw refusedAs('DPOP_BINDING_MISMATCH')
          await options.replay.verifyDpopProofAsync(proof, { htm: info.method, htu: info.href, accessToken: token, nonce, jkt })
        }
      }
    } catch (e) {
      let code = String((e && (e.irontokenCode || e.code)) || 'JWT_INVALID')
      // A bad proof argument is a bad proof.
      if (code === 'INVALID_ARGUMENT') code = dpop ? 'DPOP_PROOF_INVALID' : 'JWT_MALFORMED'
      // A JWT_/DPOP_/MTLS_ code is a refusal (401); anything else (a JWKS
      // that cannot be fetched, a store that did not answer) means the token
      // was not judged (503).
      return answer(code, nonce)
    }
    const have = scopesOf(payload)
    if (!scopes.every((s) => have.includes(s))) return answer('INSUFFICIENT_SCOPE', nonce)
    return { claims: payload, headers: {} }
  }
}

function invalid(message) {
  const e = new Error(`INVALID_ARGUMENT: ${message}`)
  e.code = 'INVALID_ARGUMENT'
  return e
}

// (manager, options) or ({ manager, ...options }).
function managerAndOptions(first, second) {
  if (first && typeof first.authorizeAsync === 'function') return [first, second || {}]
  if (first && typeof first === 'object' && second === undefined) {
    const { manager, ...options } = first
    if (manager && typeof manager.authorizeAsync === 'function') return [manager, options]
  }
  throw invalid('give a TokenManager: requireCapability(manager, { tool }) or requireCapability({ manager, tool })')
}

/**
 * A judge of capability tokens (Biscuit) in `Authorization: Bearer`:
 * `(authorizationHeader, url, req) => Promise<{ authorization } | refusal>`.
 * Options: tool (required); resource, costMicros, sessionId (each a value or
 * a function of the request); refuseQueryCredentials (default true).
 */
function capabilityJudge(first, second) {
  const [manager, options] = managerAndOptions(first, second)
  checkOptions(options, ['tool', 'resource', 'costMicros', 'sessionId', 'refuseQueryCredentials'])
  if (typeof options.tool !== 'string' || options.tool === '') throw invalid('tool must be a non-empty string')
  const refuseQuery = options.refuseQueryCredentials !== false
  const per = (v, req) => (typeof v === 'function' ? v(req) : v)
  return async (authorization, url, req) => {
    if (refuseQuery && credentialInQuery(url, 'authorization')) return QUERY_REFUSAL()
    const m = typeof authorization === 'string' ? /^Bearer +(\S+) *$/i.exec(authorization) : null
    if (!m) return answerOf(httpCapabilityAnswer('MISSING'))
    const request = { tool: options.tool }
    const resource = per(options.resource, req)
    if (resource != null) request.resource = String(resource)
    const cost = per(options.costMicros, req)
    if (cost != null) request.costMicros = Number(cost)
    const session = per(options.sessionId, req)
    if (session != null) request.sessionId = String(session)
    let a
    try {
      a = await manager.authorizeAsync(m[1], request)
    } catch (e) {
      if (e && (e.code === 'STORAGE' || e.code === 'BUSY')) return unavailable(e)
      throw e
    }
    return a.allowed ? { authorization: a, headers: {} } : answerOf(httpCapabilityAnswer(a.reason))
  }
}

/**
 * Records one LLM call for the key that made the request (`req.irontoken`,
 * set by requireApiKey, unless `options.record` names another). The request
 * id comes from `options.requestIdHeader` (default X-Request-ID) when the
 * client sent a usable one, so a retried request counts once: resolves
 * false for such a duplicate. When the guard counted declared tokens
 * (`tokens`) against the key's limits in tokens, the actual count (prompt +
 * completion) is settled against them, once. Runs off the event loop.
 */
async function recordLlmUsage(manager, req, options = {}) {
  checkOptions(options, ['model', 'promptTokens', 'completionTokens', 'cacheReadTokens', 'cacheWriteTokens', 'costMicros', 'requestIdHeader', 'metadata', 'record'])
  const record = options.record || (req && req.irontoken)
  if (!record || typeof record.id !== 'string' || typeof record.owner !== 'string') {
    throw Object.assign(new Error('INVALID_ARGUMENT: no key record: guard the route with requireApiKey, or give options.record'), { code: 'INVALID_ARGUMENT' })
  }
  if (typeof options.model !== 'string' || options.model === '') {
    throw Object.assign(new Error('INVALID_ARGUMENT: options.model names the model called'), { code: 'INVALID_ARGUMENT' })
  }
  const header = (options.requestIdHeader || 'x-request-id').toLowerCase()
  let requestId = req && req.headers ? req.headers[header] : undefined
  if (Array.isArray(requestId)) requestId = requestId[0]
  // Not an id the store takes (a client's garbage): counted as a new request. Core's rule.
  requestId = typeof requestId === 'string' ? requestIdFromHeader(requestId) ?? undefined : undefined
  const report = { keyId: record.id, model: options.model }
  if (requestId !== undefined) report.requestId = requestId
  for (const k of ['promptTokens', 'completionTokens', 'cacheReadTokens', 'cacheWriteTokens', 'costMicros', 'metadata']) {
    if (options[k] !== undefined) report[k] = options[k]
  }
  const recorded = await manager.recordUsageAsync(report)
  const declared = req && typeof req === 'object' ? declaredTokens.get(req) : undefined
  if (declared !== undefined && !recorded.duplicate) {
    declaredTokens.delete(req) // settled once
    if ((record.rateLimits || []).some((l) => l.unit === 'tokens')) {
      const actual = (options.promptTokens || 0) + (options.completionTokens || 0)
      await manager.settleTokensAsync(record.id, declared, actual)
    }
  }
  return !recorded.duplicate
}

module.exports = { apiKeyJudge, jwtJudge, capabilityJudge, rateLimitHeaders, credentialInQuery, recordLlmUsage }
