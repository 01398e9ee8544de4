// Launcher for the reference ATProto PDS used by the test suite: an in-memory
// PLC directory (@did-plc/server) and @atproto/pds in one node process, both
// bound to 127.0.0.1 only.
//
// Environment:
//   PDS_TOOLS_DIR   folder holding node_modules (default: this file's folder)
//   PDS_PORT, PLC_PORT   ports to bind (required)
//   PDS_*, LOG_*    read by @atproto/pds itself (see sessionkeeper.testing.reference_pds)
//   PDS_RATE_LIMITS_ENABLED   "true" turns the PDS rate limits on (default off)
//   PDS_EXIT_WITH_PARENT   "true": shut down when the parent process dies, so a
//                   killed test run leaves no server behind
//   PDS_ORPHAN_CLEANUP_DIR   a folder to remove after such a shutdown (the
//                   throw-away data folder the dead parent can no longer remove)
//
// Prints one line "reference-pds ready pds=<port> plc=<port>" on stderr once both
// listen; SIGTERM/SIGINT shut both down gracefully.
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const toolsDir = process.env.PDS_TOOLS_DIR || here
const requireFromTools = createRequire(path.join(toolsDir, 'package.json'))
const load = (name) => import(pathToFileURL(requireFromTools.resolve(name)).href)

const port = (name) => {
  const value = Number(process.env[name])
  if (!Number.isInteger(value) || value <= 0 || value > 65535) {
    console.error(`reference-pds: ${name} must be a port number, got ${process.env[name]}`)
    process.exit(2)
  }
  return value
}
const pdsPort = port('PDS_PORT')
const plcPort = port('PLC_PORT')
process.env.PDS_RATE_LIMITS_ENABLED = process.env.PDS_RATE_LIMITS_ENABLED === 'true' ? 'true' : 'false'

// Both libraries call listen(port) without a host, i.e. on every interface.
// Pin every numeric-port listen to loopback before they are loaded.
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1')
  else if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined && !args[0].host) {
    args[0] = { ...args[0], host: '127.0.0.1' }
  }
  return listen.apply(this, args)
}

const plcModule = await load('@did-plc/server')
const plc = plcModule.default ?? plcModule
const plcServer = plc.PlcServer.create({ db: plc.Database.mock(), port: plcPort })
await plcServer.start()

const { PDS, envToCfg, envToSecrets, readEnv } = await load('@atproto/pds')
const env = readEnv()
const pds = await PDS.create(envToCfg(env), envToSecrets(env))
await pds.start()
console.error(`reference-pds ready pds=${pdsPort} plc=${plcPort}`)

let stopping = false
const stop = async (cleanupDir) => {
  if (stopping) return
  stopping = true
  await pds.destroy().catch((err) => console.error('pds shutdown:', err))
  await plcServer.destroy().catch((err) => console.error('plc shutdown:', err))
  if (cleanupDir) fs.rmSync(cleanupDir, { recursive: true, force: true })
  process.exit(0)
}
process.on('SIGTERM', () => stop())
process.on('SIGINT', () => stop())

if (process.env.PDS_EXIT_WITH_PARENT === 'true') {
  // An orphan is re-parented (to init or a subreaper), which changes ppid.
  const parent = process.ppid
  setInterval(() => {
    if (process.ppid !== parent) {
      console.error(`reference-pds: parent ${parent} is gone; shutting down`)
      stop(process.env.PDS_ORPHAN_CLEANUP_DIR)
    }
  }, 500).unref()
}
