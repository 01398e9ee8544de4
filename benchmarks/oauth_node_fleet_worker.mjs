// One worker of the OAuth fleet benchmark using @atproto/oauth-client-node as a
// TypeScript team would assemble it for many processes: sessions in Redis (ioredis)
// and the client's requestLock on a Redis mutex (redis-semaphore, its defaults).
// On each "round" line from stdin it makes CALLS getSession calls as accounts
// picked at random (restore, then fetchHandler) and prints one JSON line.
//   node oauth_node_fleet_worker.mjs TOOLS_DIR REDIS_URL PDS_URL PLC_URL CLIENT_ID DIDS_JSON CALLS SEED
import readline from 'node:readline'
import { loopbackClient, toolsRequire } from './oauth_node_client.mjs'

const [toolsDir, redisUrl, pdsUrl, plcUrl, clientId, didsJson, callsText, seedText] =
  process.argv.slice(2)
const requireFromTools = toolsRequire(toolsDir)
const Redis = requireFromTools('ioredis')
const { Mutex } = requireFromTools('redis-semaphore')

const redis = new Redis(redisUrl)
const sessionStore = {
  async get(sub) {
    const text = await redis.get(`node:${sub}`)
    return text ? JSON.parse(text) : undefined
  },
  async set(sub, value) { await redis.set(`node:${sub}`, JSON.stringify(value)) },
  async del(sub) { await redis.del(`node:${sub}`) },
}
// The lock the package asks for across processes ("credentials might get revoked"
// without one): a Redis mutex per lock name.
async function requestLock(name, fn) {
  const mutex = new Mutex(redis, name)
  await mutex.acquire()
  try { return await fn() } finally { await mutex.release() }
}

const client = await loopbackClient(toolsDir, {
  clientId, pdsUrl, plcUrl, sessionStore, requestLock,
})

const dids = JSON.parse(didsJson)
const calls = Number(callsText)
let seed = Number(seedText) >>> 0
function random() { // mulberry32: the same picks for the same seed
  seed = (seed + 0x6d2b79f5) >>> 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

process.stdout.write('ready\n')
for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line.trim() === 'stop') break
  const report = { ok: 0, failed: [], touched: [], seconds: [] }
  const touched = new Set()
  for (let i = 0; i < calls; i++) {
    const index = Math.floor(random() * dids.length)
    touched.add(index)
    try {
      const began = performance.now()
      const session = await client.restore(dids[index])
      const answer = await session.fetchHandler('/xrpc/com.atproto.server.getSession')
      if (answer.status === 200) {
        report.ok += 1
        report.seconds.push((performance.now() - began) / 1000)
      } else report.failed.push(`HTTP ${answer.status}`)
    } catch (err) {
      report.failed.push(`${err?.constructor?.name}: ${String(err?.message).slice(0, 160)}`)
    }
  }
  report.touched = [...touched]
  process.stdout.write(JSON.stringify(report) + '\n')
}
await redis.quit()
process.exit(0)
