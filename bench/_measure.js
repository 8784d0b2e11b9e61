'use strict'
// Timing helpers shared by the Node side-by-side benchmark scripts: the
// median time per call in µs, over 20 batches of n / 20 calls.

function median(batches) {
  return batches.sort((x, y) => x - y)[10]
}

function measureSync(fn, n) {
  const per = Math.max(1, Math.floor(n / 20))
  const b = []
  for (let i = 0; i < 20; i++) {
    const t = process.hrtime.bigint()
    for (let j = 0; j < per; j++) fn()
    b.push(Number(process.hrtime.bigint() - t) / per / 1000)
  }
  return median(b)
}

async function measureAsync(fn, n) {
  const per = Math.max(1, Math.floor(n / 20))
  const b = []
  for (let i = 0; i < 20; i++) {
    const t = process.hrtime.bigint()
    for (let j = 0; j < per; j++) await fn()
    b.push(Number(process.hrtime.bigint() - t) / per / 1000)
  }
  return median(b)
}

module.exports = { measureSync, measureAsync }
