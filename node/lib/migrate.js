'use strict'
// Moving keys over from an old system on their first use.

const native = require('../binding.js').load()
const { invalidArgument } = require('./errors.js')

// Moving keys over from the old system (bcrypt-hashed keys cannot be looked
// up): irontoken first; the old check only for a key irontoken does not know
// that may be an old one; a good old key is imported on that first use.

/** Whether a refusal may be a key of the old system (see verifyOrUpgrade). */
function upgradable(key, reason) {
  // The rule lives in core (keys::may_be_legacy).
  return typeof key === 'string' && typeof reason === 'string' && native.mayBeLegacy(key, reason)
}

/**
 * Verifies `key` off the event loop; if irontoken does not know it and it may
 * be an old key, awaits `legacyCheck(key)` (the old bcrypt check) — the
 * fields of `importKey` (`legacyId` and `owner` required) when the key is
 * good, else null — imports the key and verifies it again. One irontoken key
 * per old record (bcrypt reads only 72 bytes); a deleted key stays deleted.
 */
async function verifyOrUpgrade(tm, key, legacyCheck, requiredScopes) {
  // The native calls take header bytes as they are; the legacy check and
  // the import need the text (bytes that are not UTF-8 are never upgraded).
  if (key instanceof Uint8Array) key = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('utf8')
  const result = await tm.verifyKeyAsync(key, requiredScopes)
  if (result.valid || !upgradable(key, result.reason)) return result
  const fields = await legacyCheck(key)
  if (!fields) return result
  if (typeof fields.legacyId !== 'string' || fields.legacyId === '') {
    throw invalidArgument(
      "legacyCheck must return legacyId, the old record's id: one irontoken key per old record (bcrypt reads only 72 bytes of a key)",
    )
  }
  try {
    await tm.importKeysAsync([{ ...fields, key }])
  } catch (e) {
    // CONFLICT: imported by a concurrent request, or refused (deleted, or its old record has a key)
    if (!e || e.code !== 'CONFLICT') throw e
  }
  return tm.verifyKeyAsync(key, requiredScopes)
}

module.exports = { upgradable, verifyOrUpgrade }
