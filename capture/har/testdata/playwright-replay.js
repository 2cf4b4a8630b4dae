// Serves a HAR to Chromium with routeFromHAR and loads URL: node playwright-replay.js HAR URL [TITLE]
// (used by TestPlaywrightRouteFromHAR).
const { chromium } = require('playwright-core');
(async () => {
  const [har, url, expectTitle] = process.argv.slice(2);
  const b = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/lib/chromium/chromium', args: ['--no-sandbox'] });
  const ctx = await b.newContext();
  await ctx.routeFromHAR(har, { notFound: 'abort' });
  const p = await ctx.newPage();
  const failed = [];
  p.on('requestfailed', r => failed.push(r.url()));
  const resp = await p.goto(url);
  console.log('status', resp.status(), 'body', (await resp.text()).slice(0, 60));
  if (expectTitle) {
    await p.waitForFunction(t => document.title.startsWith(t), expectTitle, { timeout: 10000 });
    console.log('title', await p.title(), 'app', await p.evaluate(() => window.app), 'items', await p.evaluate(() => document.body.dataset.items));
  }
  console.log('failed', failed);
  await b.close();
})().catch(e => { console.error('ERR', e.message); process.exit(1); });
