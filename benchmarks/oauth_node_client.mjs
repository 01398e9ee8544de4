// What both Node OAuth workers build alike: @atproto/oauth-client-node loaded from
// the tools folder, and a loopback client for the benchmark's client_id with an
// in-memory state store. Each worker brings its own session store (and lock).
import path from 'node:path'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

export function toolsRequire(toolsDir) {
  return createRequire(path.join(toolsDir, 'package.json'))
}

export async function loopbackClient(toolsDir, { clientId, pdsUrl, plcUrl, ...stores }) {
  const { NodeOAuthClient } = await import(
    pathToFileURL(toolsRequire(toolsDir).resolve('@atproto/oauth-client-node')).href
  )
  const states = new Map()
  const stateStore = {
    async get(key) { return states.get(key) },
    async set(key, value) { states.set(key, value) },
    async del(key) { states.delete(key) },
  }
  const params = new URL(clientId).searchParams
  return new NodeOAuthClient({
    clientMetadata: {
      client_id: clientId,
      redirect_uris: params.getAll('redirect_uri'),
      scope: params.get('scope'),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      dpop_bound_access_tokens: true,
    },
    stateStore,
    ...stores, // sessionStore, and requestLock where the worker has one
    handleResolver: pdsUrl,
    plcDirectoryUrl: plcUrl,
    allowHttp: true,
  })
}
