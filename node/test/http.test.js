'use strict'
// The guards' HTTP answers come from core (irontoken::http): the shared
// vectors of tests/vectors/http.json, run through the functions the Express
// and Fastify adapters call.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const native = require('../binding.js').load()
const { httpStatusOf } = require('../index.js')
const { rateLimitHeaders } = require('../adapters.js')

const VECTORS = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'tests', 'vectors', 'http.json'), 'utf8'))

// The vectors are written in core's snake_case; Node callers pass camelCase.
const camel = (v) => {
  if (Array.isArray(v)) return v.map(camel)
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/_([a-z])/g, (_, c) => c.toUpperCase()), camel(x)]))
  }
  return v
}

test('api-key answers match the shared vectors', () => {
  for (const c of VECTORS.api_key) {
    const got = native.httpApiKeyAnswer(c.header, c.scopes, camel(c.outcome))
    assert.deepEqual({ ...got, code: got.code ?? null, message: got.message ?? null }, c.want, c.name)
  }
})

test('bearer answers match the shared vectors', () => {
  for (const c of VECTORS.bearer) {
    const got = native.httpBearerAnswer(c.code, c.scopes)
    assert.deepEqual({ ...got, code: got.code ?? null, message: got.message ?? null }, c.want, c.code)
  }
})

test('DPoP answers match the shared vectors', () => {
  for (const c of VECTORS.dpop) {
    const got = native.httpDpopAnswer(c.code, c.scopes, c.nonce ?? undefined)
    assert.deepEqual({ ...got, code: got.code ?? null, message: got.message ?? null }, c.want, c.code)
  }
})

test('httpStatusOf matches the shared vectors', () => {
  for (const [code, want] of Object.entries(VECTORS.status_of)) assert.equal(httpStatusOf(code), want, code)
})

test('rateLimitHeaders keeps its shape and says nothing when degraded', () => {
  const limits = [{ name: 'per_second', count: 10, periodMs: 1000, burst: 10 }]
  const state = { allowed: true, degraded: false, retryAfterMs: 0, limits: [{ name: 'per_second', remaining: 9, resetMs: 100 }] }
  assert.deepEqual(rateLimitHeaders(limits, state), { 'RateLimit-Policy': '"per_second";q=10;w=1', RateLimit: '"per_second";r=9;t=1' })
  assert.deepEqual(rateLimitHeaders([], state), {})
  assert.deepEqual(rateLimitHeaders(limits, { ...state, degraded: true }), {})
})

test('a bad outcome is INVALID_ARGUMENT', () => {
  assert.throws(() => native.httpApiKeyAnswer('X-API-Key', [], { reason: 'VALID', now: 'soon' }), { code: 'INVALID_ARGUMENT' })
})

test('LLM requests read as the shared vectors say, as the adapters call core', () => {
  const fields = native.httpLlmBodyFields()
  assert.equal(fields[0], 'model')
  for (const c of VECTORS.llm) {
    let body = c.body
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
      body = Object.fromEntries(fields.filter((f) => body[f] !== undefined).map((f) => [f, body[f]]))
    } else {
      body = null
    }
    const m = c.model || {}
    const t = c.tokens || {}
    const got = native.httpLlmRequest(body, m.source || '', m.value ?? null, t.source || '', t.value ?? null)
    const want = got.answer
      ? { status: got.answer.status, code: got.answer.code, message: got.answer.message }
      : { model: got.model ?? null, tokens: got.tokens ?? null }
    assert.deepEqual(want, c.want, c.name)
  }
  assert.throws(() => native.httpLlmRequest(null, 'header', null, '', null), /INVALID_ARGUMENT/)
})
