// Records a HAR with Playwright and Chromium: node playwright-record.js PORT OUT.har embed|omit
// (NODE_PATH must hold playwright-core; CHROMIUM may name the browser binary).
const { chromium } = require('playwright-core');
(async () => {
  const [port, out, content] = process.argv.slice(2);
  const b = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/lib/chromium/chromium', args: ['--no-sandbox'] });
  const ctx = await b.newContext({ recordHar: { path: out, content } });
  const p = await ctx.newPage();
  await p.goto(`http://127.0.0.1:${port}/`);
  await p.waitForFunction(() => document.title.startsWith('added'));
  console.log('title', await p.title());
  await ctx.close(); await b.close();
})().catch(e => { console.error(e); process.exit(1); });
