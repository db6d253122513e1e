// Drives Hearth's OAuth server with the official client (@atproto/oauth-client-node) as
// a loopback development client, and its sign-in and consent pages with headless
// Chromium (puppeteer-core). Run by pds's TestOAuthRealClient, which starts Hearth and
// reads the JSON this prints last (the revoked session's token and DPoP key, so it can
// check the server refuses them).
//
// UI=reference runs the same client code against the reference PDS (../shared/refpds,
// started with --dev-mode); only the browser steps differ, as its pages are its own
// (a script-driven app instead of Hearth's server-rendered forms).
//
// env: PDS_URL, PLC_URL, HANDLE, PASSWORD, CHROMIUM (binary), SCREENS (dir for PNGs),
// UI (hearth, the default, or reference)
import http from 'node:http'
import { NodeOAuthClient, requestLocalLock } from '@atproto/oauth-client-node'
import puppeteer from 'puppeteer-core'

const { PDS_URL, PLC_URL, HANDLE, PASSWORD, CHROMIUM, SCREENS } = process.env
const UI = process.env.UI || 'hearth'
const log = (...a) => console.error('[flow]', ...a)
const scope = 'atproto transition:generic'

// The callback listener the browser is sent back to.
let gotCallback
const callback = new Promise((resolve) => (gotCallback = resolve))
const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://127.0.0.1')
  if (u.pathname !== '/callback') {
    res.writeHead(404).end()
    return
  }
  res.writeHead(200, { 'content-type': 'text/html' }).end('<p>Signed in; you can close this window.</p>')
  gotCallback(u.searchParams)
})
await new Promise((r) => server.listen(0, '127.0.0.1', r))
const redirectUri = `http://127.0.0.1:${server.address().port}/callback`

const clientId = `http://localhost?${new URLSearchParams({ redirect_uri: redirectUri, scope })}`
const sessions = new Map()
const states = new Map()
const client = new NodeOAuthClient({
  clientMetadata: {
    client_id: clientId,
    redirect_uris: [redirectUri],
    scope,
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    dpop_bound_access_tokens: true,
  },
  allowHttp: true,
  requestLock: requestLocalLock,
  plcDirectoryUrl: PLC_URL,
  handleResolver: PDS_URL,
  stateStore: { set: async (k, v) => states.set(k, v), get: async (k) => states.get(k), del: async (k) => states.delete(k) },
  sessionStore: { set: async (k, v) => sessions.set(k, v), get: async (k) => sessions.get(k), del: async (k) => sessions.delete(k) },
})

const step = async (name, fn) => {
  log(name)
  try {
    return await fn()
  } catch (err) {
    throw new Error(`${name}: ${err?.stack ?? err}`)
  }
}

const url = await step('authorize', () => client.authorize(HANDLE, { state: 'hearth-test' }))
if (!url.href.startsWith(PDS_URL + '/oauth/authorize')) throw new Error(`authorize URL ${url} is not Hearth's`)

const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
})
// Hearth's pages: the sign-in form (login_hint prefilled), then the consent form.
const driveHearth = async (page) => {
  await page.screenshot({ path: `${SCREENS}/signin.png`, fullPage: true })
  const hint = await page.$eval('#identifier', (el) => el.value)
  if (hint !== HANDLE) throw new Error(`login_hint not prefilled: ${JSON.stringify(hint)}`)
  await page.type('#password', PASSWORD)
  await step('consent page', () => Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type=submit]')]))
  const heading = await page.$eval('h1', (el) => el.textContent)
  if (!/wants to use your account/.test(heading)) throw new Error(`expected the consent page, got ${heading}`)
  await page.screenshot({ path: `${SCREENS}/consent.png`, fullPage: true })
  await page.click('button[value=allow]')
}

// The reference's pages: one script-rendered app; found by role and text, not ids.
const clickButton = async (page, re) => {
  const handle = await page.waitForFunction(
    (src) => [...document.querySelectorAll('button')].find((b) => new RegExp(src, 'i').test(b.innerText) && !b.disabled),
    {},
    re.source,
  )
  await handle.asElement().click()
}
const driveReference = async (page) => {
  await step('reference sign-in form', () => page.waitForSelector('input[type=password]'))
  await page.screenshot({ path: `${SCREENS}/ref-signin.png`, fullPage: true })
  const user = await page.$('input[name=username], input[autocomplete=username]')
  if (user && !(await user.evaluate((el) => el.value))) await user.type(HANDLE)
  await page.type('input[type=password]', PASSWORD)
  await clickButton(page, /^(sign in|next|log in)$/)
  await step('reference consent', () => clickButton(page, /^(authorize|accept|allow)$/).then(() => page.screenshot({ path: `${SCREENS}/ref-consent.png`, fullPage: true })))
}

let params
const page = await (async () => {
  const page = await browser.newPage()
  await page.setViewport({ width: 420, height: 860, deviceScaleFactor: 1 })
  page.setDefaultTimeout(15000)
  await step('sign-in page', () => page.goto(url.href, { waitUntil: 'load' }))
  try {
    await (UI === 'reference' ? driveReference(page) : driveHearth(page))
  } catch (err) {
    log('page at failure:', page.url(), (await page.content()).slice(0, 4000))
    throw err
  }
  params = await step('callback', () => Promise.race([callback, new Promise((_, rej) => setTimeout(() => rej(new Error('no callback in 15s')), 15000))]))
  return page
})().catch(async (err) => {
  await browser.close()
  throw err
})


const { session } = await step('callback exchange', () => client.callback(params))
const json = async (res, what) => {
  const body = await res.json()
  if (!res.ok) throw new Error(`${what}: ${res.status} ${JSON.stringify(body)}`)
  return body
}
const me = await step('getSession', async () => json(await session.fetchHandler('/xrpc/com.atproto.server.getSession'), 'getSession'))
if (me.did !== session.did) throw new Error(`getSession did ${me.did} != ${session.did}`)
const created = await step('createRecord', async () =>
  json(
    await session.fetchHandler('/xrpc/com.atproto.repo.createRecord', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        repo: session.did,
        collection: 'app.bsky.feed.post',
        record: { $type: 'app.bsky.feed.post', text: 'posted by the official OAuth client', createdAt: new Date().toISOString() },
      }),
    }),
    'createRecord',
  ),
)
const rkey = created.uri.split('/').pop()
const got = await step('getRecord', async () =>
  json(await session.fetchHandler(`/xrpc/com.atproto.repo.getRecord?${new URLSearchParams({ repo: session.did, collection: 'app.bsky.feed.post', rkey })}`), 'getRecord'),
)
if (got.value.text !== 'posted by the official OAuth client') throw new Error('getRecord returned another record')

const before = (await session.getTokenInfo(false)).expiresAt
const oldRefresh = sessions.get(session.did).tokenSet.refresh_token
await step('refresh', () => session.getTokenInfo(true))
const stored = sessions.get(session.did)
if (stored.tokenSet.refresh_token === oldRefresh) throw new Error('refresh did not rotate the refresh token')
await step('getSession after refresh', async () => json(await session.fetchHandler('/xrpc/com.atproto.server.getSession'), 'getSession'))
try {
  // The account page, signed in by the same browser, lists the app just authorized
  // (Hearth's; the reference's account pages are another app, not compared here).
  if (UI !== 'reference') {
    await step('account page', () => page.goto(`${PDS_URL}/account`, { waitUntil: 'load' }))
    await page.screenshot({ path: `${SCREENS}/account.png`, fullPage: true })
    const text = await page.$eval('main', (el) => el.innerText)
    if (!text.includes('Apps you signed in to') || !text.includes('development app')) throw new Error('account page does not list the app')
  }
} finally {
  await browser.close()
}
const revoked = { accessToken: stored.tokenSet.access_token, dpopJwk: stored.dpopJwk, did: session.did, uri: created.uri, expiresBefore: before }
await step('revoke (signOut)', () => session.signOut())
server.close()
console.log(JSON.stringify(revoked))
