'use strict'
// irontoken for Node.js: loads the native addon built from bindings/node and
// gives its errors the stable codes of the core (err.code).

const util = require('node:util')

let native
try {
  native = require(process.env.IRONTOKEN_NATIVE_PATH || './irontoken.node')
} catch (e) {
  throw new Error(
    `irontoken: cannot load the native addon (${e.message}). Build it with \`make node\` from the repository root.`,
  )
}

// napi-rs reports argument-conversion failures with its own status names;
// they all mean the caller passed a bad argument.
const NAPI_ARGUMENT_CODES = new Set([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
])

function mapError(e) {
  if (e && typeof e === 'object' && NAPI_ARGUMENT_CODES.has(e.code)) {
    e.message = `INVALID_ARGUMENT: ${e.message}`
    e.code = 'INVALID_ARGUMENT'
  }
  return e
}

const { TokenManager, CreatedKey, VerifyResult } = native

for (const name of Object.getOwnPropertyNames(TokenManager.prototype)) {
  const desc = Object.getOwnPropertyDescriptor(TokenManager.prototype, name)
  if (name === 'constructor' || typeof desc.value !== 'function') continue
  const method = desc.value
  Object.defineProperty(TokenManager.prototype, name, {
    ...desc,
    value: function (...args) {
      try {
        return method.apply(this, args)
      } catch (e) {
        throw mapError(e)
      }
    },
  })
}

/** Opens a TokenManager; argument errors carry code INVALID_ARGUMENT like every other error. */
class IronTokenManager extends TokenManager {
  constructor(path, options) {
    try {
      super(path, options)
    } catch (e) {
      throw mapError(e)
    }
  }
}
Object.defineProperty(IronTokenManager, 'name', { value: 'TokenManager' })

// Logging a CreatedKey must not print the key.
CreatedKey.prototype[util.inspect.custom] = function (depth, options, inspect) {
  const shown = { key: `${this.record.displayPrefix}…`, record: this.record }
  return `CreatedKey ${inspect(shown, options)}`
}
CreatedKey.prototype.toJSON = function () {
  return { key: `${this.record.displayPrefix}…`, record: this.record }
}

// A VerifyResult's fields are getters; show and serialize them like a plain object.
VerifyResult.prototype.toJSON = function () {
  return { valid: this.valid, reason: this.reason, record: this.record }
}
VerifyResult.prototype[util.inspect.custom] = function (depth, options, inspect) {
  return `VerifyResult ${inspect(this.toJSON(), options)}`
}

function isWellFormed(key) {
  try {
    return native.isWellFormed(key)
  } catch (e) {
    throw mapError(e)
  }
}

module.exports = {
  TokenManager: IronTokenManager,
  CreatedKey,
  VerifyResult,
  isWellFormed,
  version: native.version(),
}
