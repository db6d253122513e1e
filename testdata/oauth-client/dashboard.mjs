// Drives Hearth's operator dashboard in headless Chromium (puppeteer-core): sign in with
// the admin password, search an account, open it, take it down (checked through the
// PDS's admin XRPC: getSubjectStatus says applied, and listRecords refuses the repo),
// restore it (checked the same way), and screenshot every page. Run by cmd/hearth's
// TestDashboardBrowser, which starts `hearth serve` with --dashboard-listen.
//
// env: DASH_URL, PDS_URL, ADMIN_PASSWORD, HANDLE, DID, CHROMIUM, SCREENS
import puppeteer from 'puppeteer-core'

const { DASH_URL, PDS_URL, ADMIN_PASSWORD, HANDLE, DID, CHROMIUM, SCREENS } = process.env
const log = (...a) => console.error('[dashboard]', ...a)
const step = async (name, fn) => {
  log(name)
  try {
    return await fn()
  } catch (err) {
    throw new Error(`${name}: ${err?.stack ?? err}`)
  }
}
const basic = 'Basic ' + Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')
const xrpc = async (nsid, params, auth) => {
  const res = await fetch(`${PDS_URL}/xrpc/${nsid}?${new URLSearchParams(params)}`, { headers: auth ? { authorization: basic } : {} })
  return { status: res.status, body: await res.json() }
}
const expectTakedown = async (applied) => {
  const st = await xrpc('com.atproto.admin.getSubjectStatus', { did: DID }, true)
  if (st.status !== 200 || st.body.takedown?.applied !== applied) throw new Error(`getSubjectStatus: ${st.status} ${JSON.stringify(st.body)}`)
  const repo = await xrpc('com.atproto.repo.listRecords', { repo: DID, collection: 'app.bsky.feed.post' }, false)
  if (applied ? repo.status !== 400 || repo.body.error !== 'RepoTakendown' : repo.status !== 200) {
    throw new Error(`listRecords with takedown ${applied}: ${repo.status} ${JSON.stringify(repo.body)}`)
  }
}
const shot = (page, name) => page.screenshot({ path: `${SCREENS}/${name}.png`, fullPage: true })
const text = (page, sel) => page.$eval(sel, (el) => el.textContent.trim())

const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
})
const page = await browser.newPage()
await page.setViewport({ width: 1200, height: 800, deviceScaleFactor: 1 })
page.setDefaultTimeout(15000)
// The strict CSP must not block anything the pages use.
const violations = []
page.on('console', (m) => /Content Security Policy|Refused to/.test(m.text()) && violations.push(m.text()))
const submit = (sel) => Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(sel)])
try {
  await step('sign-in page', async () => {
    await page.goto(`${DASH_URL}/accounts`, { waitUntil: 'load' })
    if (!page.url().includes('/sign-in')) throw new Error(`not sent to sign in: ${page.url()}`)
    await shot(page, 'signin')
  })
  await step('wrong password', async () => {
    await page.type('#password', 'not-the-password')
    await submit('#sign-in')
    if (!/Wrong admin password/.test(await text(page, '.error'))) throw new Error('no error shown')
  })
  await step('sign in', async () => {
    await page.type('#password', ADMIN_PASSWORD)
    await submit('#sign-in')
    if (!page.url().endsWith('/accounts')) throw new Error(`after sign-in at ${page.url()}`)
  })
  await step('search', async () => {
    await page.type('#q', HANDLE.slice(0, 3))
    await submit('#search')
    const handles = await page.$$eval('a.acct', (as) => as.map((a) => a.textContent))
    if (!handles.includes('@' + HANDLE)) throw new Error(`search found ${handles}`)
    await shot(page, 'accounts')
  })
  await step('open the account', async () => {
    await submit(`a.acct[href="/accounts/${DID}"]`)
    if ((await text(page, '#status')) !== 'active') throw new Error('not active')
    await shot(page, 'account')
  })
  await step('take down', async () => {
    await page.type('#takedown-reason', 'spam run (browser test)')
    await submit('#takedown')
    if ((await text(page, '#status')) !== 'takendown') throw new Error(`status ${await text(page, '#status')}`)
    await expectTakedown(true)
    await shot(page, 'account-takendown')
  })
  await step('restore', async () => {
    await page.type('#restore-reason', 'appeal accepted')
    await submit('#restore')
    if ((await text(page, '#status')) !== 'active') throw new Error(`status ${await text(page, '#status')}`)
    await expectTakedown(false)
  })
  await step('moderation log', async () => {
    await page.goto(`${DASH_URL}/moderation`, { waitUntil: 'load' })
    const body = await page.$eval('main', (el) => el.innerText)
    if (!body.includes('spam run (browser test)') || !body.includes('appeal accepted')) throw new Error(body)
    await shot(page, 'moderation')
  })
  await step('invites', async () => {
    await page.goto(`${DASH_URL}/invites`, { waitUntil: 'load' })
    await page.$eval('#uses', (el) => (el.value = '5'))
    await submit('#create-invite')
    await text(page, '#new-code')
    await shot(page, 'invites')
  })
  for (const p of ['health', 'firehose', 'feed']) {
    await step(p, async () => {
      await page.goto(`${DASH_URL}/${p}`, { waitUntil: 'load' })
      await shot(page, p)
    })
  }
  await step('feed explorer shows the post', async () => {
    const body = await page.$eval('main', (el) => el.innerText)
    if (!body.includes('hello from the dashboard test')) throw new Error(body.slice(0, 2000))
  })
  if (violations.length) throw new Error(`CSP violations: ${violations.join('; ')}`)
} catch (err) {
  log('page at failure:', page.url(), (await page.content()).slice(0, 4000))
  await browser.close()
  throw err
}
await browser.close()
console.log(JSON.stringify({ ok: true }))
