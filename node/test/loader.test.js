'use strict'
// The platform loader (binding.js): which addon it picks and what it says
// when there is none. Each case runs in a child process with process.platform
// or process.arch replaced before the package loads.
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const fs = require('node:fs')
const { platformName, PLATFORMS } = require('../binding.js')

const PKG = path.join(__dirname, '..')

function loadAs(prop, value, env = {}) {
  const code = `Object.defineProperty(process, ${JSON.stringify(prop)}, { value: ${JSON.stringify(value)} });
    try { require(${JSON.stringify(PKG)}); console.log('loaded') }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }`
  const vars = { ...process.env }
  delete vars.IRONTOKEN_NATIVE_PATH
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...vars, ...env } })
  assert.equal(r.status, 0, r.stderr)
  const out = r.stdout.trim()
  return out === 'loaded' ? 'loaded' : JSON.parse(out)
}

test('this machine is one of the published platforms and its addon loads', () => {
  assert.ok(PLATFORMS[platformName()], `no package for ${platformName()}`)
  assert.equal(loadAs('title', 'node'), 'loaded')
})

test('a platform with no prebuilt addon: the error names it and says how to build from source', () => {
  const e = loadAs('platform', 'freebsd')
  assert.equal(e.code, 'NATIVE_ADDON_MISSING')
  assert.match(e.message, /freebsd-x64/)
  assert.match(e.message, /publishes no prebuilt addon/)
  assert.match(e.message, /make node/)
  assert.match(e.message, /IRONTOKEN_NATIVE_PATH/)
})

test('a published platform whose package is not installed: the error names the package', () => {
  const e = loadAs('arch', 'arm64')
  assert.equal(e.code, 'NATIVE_ADDON_MISSING')
  assert.match(e.message, /@irontoken\/linux-arm64-gnu is not installed/)
  assert.match(e.message, /--omit=optional/)
})

test('IRONTOKEN_NATIVE_PATH that does not load is reported, not ignored', () => {
  const e = loadAs('platform', 'freebsd', { IRONTOKEN_NATIVE_PATH: '/nonexistent/irontoken.node' })
  assert.equal(e.code, 'NATIVE_ADDON_MISSING')
  assert.match(e.message, /IRONTOKEN_NATIVE_PATH=\/nonexistent\/irontoken.node/)
})

test('every platform has a package name, an os, a cpu and a Rust target', () => {
  for (const [name, spec] of Object.entries(PLATFORMS)) {
    assert.match(name, /^(linux|darwin|win32)-(x64|arm64)(-(gnu|musl|msvc))?$/)
    assert.ok(name.startsWith(`${spec.os}-${spec.cpu}`), name)
    assert.match(spec.target, /^(x86_64|aarch64)-/)
  }
})

test('the release workflow builds every platform the loader knows, for the same Rust target', () => {
  const yml = fs.readFileSync(path.join(PKG, '..', '.github', 'workflows', 'release.yml'), 'utf8')
  for (const [name, spec] of Object.entries(PLATFORMS)) {
    assert.match(yml, new RegExp(`platform: ${name}, os: [^,]+, target: ${spec.target},`), name)
  }
})

test('every CommonJS export is a named export to an ES module (import { version } from "irontoken")', async () => {
  const cjs = require('..')
  const { pathToFileURL } = require('node:url')
  const esm = await import(pathToFileURL(path.join(PKG, 'index.js')).href)
  const named = Object.keys(esm).filter((k) => k !== 'default').sort()
  assert.deepEqual(named, Object.keys(cjs).sort())
  for (const sub of ['express.js', 'fastify.js', 'adapters.js']) {
    const m = await import(pathToFileURL(path.join(PKG, sub)).href)
    const want = Object.keys(require(path.join(PKG, sub))).filter((k) => k !== 'default').sort()
    assert.deepEqual(Object.keys(m).filter((k) => k !== 'default').sort(), want, sub)
  }
})
