// One process of the OAuth benchmark using @atproto/oauth-client-node: restore the
// shared session from a file session store (one JSON file per DID, written by
// rename, as a store following the package README's get/set/del interface would),
// wait for the start signal, make one getSession call and print what happened.
//   node oauth_node_worker.mjs TOOLS_DIR STORE_DIR DID GO_FILE|none PDS_URL PLC_URL CLIENT_ID
import fs from 'node:fs'
import path from 'node:path'
import { loopbackClient } from './oauth_node_client.mjs'

const [toolsDir, storeDir, did, go, pdsUrl, plcUrl, clientId] = process.argv.slice(2)

const file = (sub) => path.join(storeDir, `node_${sub.replaceAll(':', '_')}.json`)
const sessionStore = {
  async get(sub) {
    try { return JSON.parse(fs.readFileSync(file(sub), 'utf8')) } catch { return undefined }
  },
  async set(sub, value) {
    const tmp = `${file(sub)}.${process.pid}.tmp`
    fs.writeFileSync(tmp, JSON.stringify(value))
    fs.renameSync(tmp, file(sub))
  },
  async del(sub) { fs.rmSync(file(sub), { force: true }) },
}
const client = await loopbackClient(toolsDir, { clientId, pdsUrl, plcUrl, sessionStore })

if (go !== 'none') {
  fs.writeFileSync(`${go}.ready-${process.pid}`, '')
  while (!fs.existsSync(go)) await new Promise((r) => setTimeout(r, 2))
}
const report = { ok: false, status: null, error: null }
try {
  const session = await client.restore(did)
  const answer = await session.fetchHandler('/xrpc/com.atproto.server.getSession')
  report.status = answer.status
  report.ok = answer.status === 200
} catch (err) {
  report.error = `${err?.constructor?.name}: ${err?.message}`
}
process.stdout.write(JSON.stringify(report) + '\n')
process.exit(0)
