'use strict'
// Finds the native addon for this platform, the napi-rs way: the main
// package `irontoken` holds JavaScript only; npm installs the one
// `@irontoken/<platform>` package of its optionalDependencies whose
// os/cpu/libc fields match this machine. Tried in order:
//   1. IRONTOKEN_NATIVE_PATH (a .node file built elsewhere),
//   2. irontoken.<platform>.node next to this file (a build from source),
//   3. the @irontoken/<platform> package.
// (napi-rs's generated loader names its packages `<name>-<platform>`; ours
// are scoped, so the loader is written here with the same detection.)

const { existsSync } = require('node:fs')
const { join } = require('node:path')

/** Every platform a release publishes a package for: name -> os, cpu, libc, Rust target. */
const PLATFORMS = {
  'linux-x64-gnu': { os: 'linux', cpu: 'x64', libc: 'glibc', target: 'x86_64-unknown-linux-gnu' },
  'linux-arm64-gnu': { os: 'linux', cpu: 'arm64', libc: 'glibc', target: 'aarch64-unknown-linux-gnu' },
  'linux-x64-musl': { os: 'linux', cpu: 'x64', libc: 'musl', target: 'x86_64-unknown-linux-musl' },
  'darwin-x64': { os: 'darwin', cpu: 'x64', libc: null, target: 'x86_64-apple-darwin' },
  'darwin-arm64': { os: 'darwin', cpu: 'arm64', libc: null, target: 'aarch64-apple-darwin' },
  'win32-x64-msvc': { os: 'win32', cpu: 'x64', libc: null, target: 'x86_64-pc-windows-msvc' },
}

// glibc reports its version in the process report; musl does not.
function isMusl() {
  try {
    const report = process.report && process.report.getReport()
    const header = report && (typeof report === 'string' ? JSON.parse(report) : report).header
    return !(header && header.glibcVersionRuntime)
  } catch {
    return false
  }
}

/** This machine's platform name, as the packages are named (`linux-x64-gnu`). */
function platformName() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function load() {
  const tried = []
  const attempt = (what, fn) => {
    try {
      return fn()
    } catch (e) {
      tried.push(`${what}: ${e && e.message ? e.message.split('\n')[0] : e}`)
      return undefined
    }
  }
  if (process.env.IRONTOKEN_NATIVE_PATH) {
    const p = process.env.IRONTOKEN_NATIVE_PATH
    const m = attempt(`IRONTOKEN_NATIVE_PATH=${p}`, () => require(p))
    if (m) return m
  }
  const name = platformName()
  const local = join(__dirname, `irontoken.${name}.node`)
  if (existsSync(local)) {
    const m = attempt(local, () => require(local))
    if (m) return m
  }
  if (PLATFORMS[name]) {
    const m = attempt(`@irontoken/${name}`, () => require(`@irontoken/${name}`))
    if (m) return m
  }
  const known = Object.keys(PLATFORMS).join(', ')
  const why = PLATFORMS[name]
    ? `the package @irontoken/${name} is not installed (was it left out with --omit=optional or --no-optional, or installed on another platform and copied here?); reinstall irontoken on this machine`
    : `irontoken publishes no prebuilt addon for ${name} (prebuilt: ${known})`
  const err = new Error(
    `irontoken: no native addon for this platform, ${name} (${process.platform} ${process.arch}): ${why}. ` +
      'To build it from source (Rust and a C compiler): clone the irontoken repository and run `make node`, ' +
      `which writes node/irontoken.${name}.node; set IRONTOKEN_NATIVE_PATH to that file, or copy it next to ` +
      `this loader (${__dirname}).` +
      (tried.length ? ` Tried: ${tried.join('; ')}` : ''),
  )
  err.code = 'NATIVE_ADDON_MISSING'
  throw err
}

module.exports = { load, platformName, PLATFORMS }
