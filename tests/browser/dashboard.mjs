// The dashboard in a real browser: Debian's Chromium (headless), driven by playwright-core,
// against a running `mailreport serve` whose store holds the bundled sample reports
// (tests/browser/run.sh sets that up). Checks that
//   - the page asks for the token (the API answers 401 without it) and opens with it;
//   - the overview's four charts are inlined SVG with bars (<rect> elements);
//   - the DMARC list opens, a click on a report shows its detail: the reporter's name and a
//     records table whose rows start with a source IP;
//   - the TLS, ARF and DSN detail views open with their fields;
//   - nothing breaks the Content-Security-Policy and no script error happens.
// Saves a screenshot of the overview to the path given (and one per detail view beside it).
//
// Usage: DASHBOARD_TOKEN=... node dashboard.mjs BASE_URL SCREENSHOT.png
// CHROMIUM overrides /usr/bin/chromium.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, basename, extname } from 'node:path';
import { chromium } from 'playwright-core';

const [baseUrl, screenshot] = process.argv.slice(2);
const token = process.env.DASHBOARD_TOKEN || '';
if (!baseUrl || !screenshot || !token) {
  console.error('usage: DASHBOARD_TOKEN=... node dashboard.mjs BASE_URL SCREENSHOT.png');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 20000;
const IP = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:.]+)$/i;

mkdirSync(dirname(screenshot), { recursive: true });
const shot = (suffix) => join(dirname(screenshot),
    `${basename(screenshot, extname(screenshot))}-${suffix}${extname(screenshot) || '.png'}`);

const failures = [];
function check(condition, message) {
  if (condition) {
    console.log(`ok   ${message}`);
  } else {
    console.log(`FAIL ${message}`);
    failures.push(message);
  }
}

// The view shows no error (the status line and error paragraphs the page writes).
async function noErrors(page, where) {
  const errors = await page.$$eval('#status.error, main .error',
      (nodes) => nodes.map((n) => n.textContent).filter(Boolean));
  check(errors.length === 0, `${where}: no error shown${errors.length ? ` (${errors.join(' | ')})` : ''}`);
}

const profile = mkdtempSync(join(tmpdir(), 'mailreport-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(TIMEOUT);

  // Script errors and CSP violations (Chromium logs "Refused to ..." on the console).
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 401/.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
  // Nothing but our server may be asked (no CDN).
  const foreign = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(baseUrl) && !r.url().startsWith('data:')) foreign.push(r.url());
  });

  // ---- sign in
  await page.goto(`${baseUrl}/`);
  await page.waitForSelector('#login:not([hidden])');
  check(true, 'without a token the page asks for one');
  await page.fill('#token', 'wrong-token');
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => {
    const e = document.getElementById('login-error');
    return !document.getElementById('login').hidden && e.textContent.length > 0;
  });
  check(true, 'a wrong token brings the prompt back with a message');
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#login', { state: 'hidden' });
  await page.waitForSelector('main h1:text("Overview")');
  check(true, 'the token opens the overview');

  // ---- overview: the samples are from January 2026, so look at all time.
  await page.selectOption('#period', 'all');
  // The new view replaces the old one when its data and charts are in.
  await page.waitForSelector('main .view[data-route*="period=all"]');
  await page.waitForFunction(() => {
    const boxes = document.querySelectorAll('.chart-box');
    return boxes.length === 4 && [...boxes].every((b) => b.querySelector('svg, .error'));
  });
  const charts = await page.$$eval('.chart-box', (boxes) => boxes.map((b) => ({
    name: b.dataset.chart,
    svg: Boolean(b.querySelector('svg')),
    bars: b.querySelectorAll('svg rect.bar').length,
    rects: b.querySelectorAll('svg rect').length,
    error: (b.querySelector('.error') || {}).textContent || '',
  })));
  for (const c of charts) {
    check(c.svg && c.rects > 0 && c.bars > 0,
        `chart ${c.name}: inline <svg> with ${c.bars} bars${c.error ? ` (${c.error})` : ''}`);
  }
  const cards = await page.$$eval('.stats .stat', (s) => s.length);
  check(cards >= 6, `overview shows ${cards} summary cards`);
  const arfRows = await page.$$eval('table.reports tbody tr.clickable', (r) => r.length);
  check(arfRows > 0, `overview lists ${arfRows} recent ARF reports`);
  const outgoing = await page.$$eval('caption', (cs) => cs.map((c) => c.textContent));
  check(outgoing.some((c) => c.startsWith('Outbox')), 'overview shows the outgoing reports');
  await noErrors(page, 'overview');
  await page.screenshot({ path: screenshot, fullPage: true });

  // ---- DMARC list → detail
  await page.click('nav a[data-section=dmarc]');
  await page.waitForSelector('main h1:text("DMARC aggregate reports")');
  await page.waitForSelector('table.reports tbody tr.clickable');
  const listed = await page.$$eval('table.reports tbody tr.clickable',
      (rows) => rows.map((r) => r.children[1].textContent));
  check(listed.length >= 3, `DMARC list shows ${listed.length} reports`);
  const caption = await page.textContent('table.reports caption');
  check(/of \d+/.test(caption), `the list says its total: "${caption}"`);
  // A click on the row (not on its link) opens the report.
  await page.click('table.reports tbody tr.clickable >> nth=0 >> td >> nth=1');
  await page.waitForSelector('main h1:text("DMARC report from")');
  const h1 = await page.textContent('main h1');
  check(h1.includes(listed[0]), `DMARC detail names the reporter "${listed[0]}"`);
  const reporter = await page.$eval('dl.report-meta',
      (dl) => [...dl.querySelectorAll('dt')].find((d) => d.textContent === 'Reporter')
          .nextElementSibling.textContent);
  check(reporter === listed[0], `DMARC detail field Reporter = "${reporter}"`);
  const records = await page.$$eval('table.records tbody tr',
      (rows) => rows.map((r) => [...r.children].map((td) => td.textContent)));
  check(records.length > 0 && IP.test(records[0][0]),
      `DMARC records table: ${records.length} rows, first source IP "${(records[0] || [])[0]}"`);
  const policy = await page.$eval('dl.policy', (dl) => dl.textContent);
  check(/adkim/.test(policy) && /Policy \(p\)/.test(policy), 'DMARC detail shows the published policy');
  await noErrors(page, 'DMARC detail');
  await page.screenshot({ path: shot('dmarc'), fullPage: true });

  // ---- TLS detail
  await page.click('nav a[data-section=tls]');
  await page.waitForSelector('main h1:text("TLS reports")');
  await page.click('table.reports tbody tr.clickable >> nth=0 >> a');
  await page.waitForSelector('main h1:text("TLS report from")');
  const tlsPolicies = await page.$$eval('dl.policy', (d) => d.length);
  check(tlsPolicies > 0, `TLS detail shows ${tlsPolicies} policies`);
  const tlsFailures = await page.$$eval('table.failures tbody tr', (rows) =>
      rows.filter((r) => !r.querySelector('.empty')).map((r) => r.children[0].textContent));
  check(tlsFailures.length > 0, `TLS detail lists failure details (${tlsFailures.join(', ')})`);
  await noErrors(page, 'TLS detail');

  // ---- ARF detail
  await page.click('nav a[data-section=arf]');
  await page.waitForSelector('main h1:text("Failure and abuse reports")');
  await page.click('table.reports tbody tr.clickable >> nth=0 >> a');
  await page.waitForSelector('main h1:text-matches("report", "i")');
  const arf = await page.$$eval('dl.fields dt', (dts) => Object.fromEntries(
      dts.map((d) => [d.textContent, d.nextElementSibling.textContent])));
  check(arf['Feedback type'] && arf['Feedback type'] !== '—',
      `ARF detail: feedback type "${arf['Feedback type']}"`);
  check(IP.test(arf['Source IP'] || ''), `ARF detail: source IP "${arf['Source IP']}"`);
  check('Original headers' in arf || await page.$('table.headers') !== null,
      'ARF detail shows the original headers');
  await noErrors(page, 'ARF detail');
  await page.screenshot({ path: shot('arf'), fullPage: true });

  // ---- DSN detail
  await page.click('nav a[data-section=dsn]');
  await page.waitForSelector('main h1:text("Delivery status notifications")');
  await page.click('table.reports tbody tr.clickable >> nth=0 >> a');
  await page.waitForSelector('main h1:text("Delivery status notification from")');
  const recipients = await page.$$eval('table.recipients tbody tr',
      (rows) => rows.map((r) => r.children[0].textContent));
  check(recipients.length > 0 && recipients[0].includes('@'),
      `DSN detail lists recipients (${recipients.join(', ')})`);
  await noErrors(page, 'DSN detail');

  // ---- signing out brings the prompt back
  await page.click('#signout');
  await page.waitForSelector('#login:not([hidden])');
  check(await page.evaluate(() => sessionStorage.length === 0), 'signing out forgets the token');

  check(problems.length === 0, `no script error or CSP violation${problems.length ? `: ${problems.join(' | ')}` : ''}`);
  check(foreign.length === 0, `no request leaves the server${foreign.length ? `: ${foreign.join(', ')}` : ''}`);
} catch (e) {
  failures.push(e.message);
  console.log(`FAIL ${e.stack || e.message}`);
} finally {
  if (context) {
    const page = context.pages()[0];
    if (failures.length && page) {
      await page.screenshot({ path: shot('failure'), fullPage: true }).catch(() => {});
    }
    await context.close().catch(() => {});
  }
  rmSync(profile, { recursive: true, force: true });
}

console.log(failures.length ? `${failures.length} check(s) failed` : 'all checks passed');
console.log(`screenshot: ${screenshot}`);
process.exit(failures.length ? 1 : 0);
