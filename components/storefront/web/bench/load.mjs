// How fast the built shop loads: each round opens the home page in a fresh browser
// context (an empty cache, as a first visit) and times, from the start of the
// navigation, the DOM being ready, the load event, and the product grid showing
// products (the page's own API calls included). Prints the numbers; asserts nothing.
//
//   STORE_URL=http://127.0.0.1:3000 [ROUNDS=20] [CHROMIUM=/usr/bin/chromium] node bench/load.mjs
import { chromium } from 'playwright-core';

const STORE_URL = (process.env.STORE_URL || '').replace(/\/+$/, '');
const ROUNDS = Number(process.env.ROUNDS || 20);
if (!STORE_URL) {
  console.error('STORE_URL must be set, e.g. STORE_URL=http://127.0.0.1:3000');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const timings = { dom: [], load: [], products: [], bytes: [] };
try {
  for (let round = 0; round < ROUNDS; round += 1) {
    const context = await browser.newContext();
    const page = await context.newPage();
    let bytes = 0;
    page.on('response', async (response) => {
      const length = Number(response.headers()['content-length'] || 0);
      bytes += length;
    });
    const started = Date.now();
    await page.goto(`${STORE_URL}/`, { waitUntil: 'load' });
    await page.getByRole('list', { name: 'Products' }).getByRole('listitem').first().waitFor();
    const shown = Date.now() - started;
    const navigation = await page.evaluate(() => {
      const [entry] = performance.getEntriesByType('navigation');
      return { dom: entry.domContentLoadedEventEnd, load: entry.loadEventEnd };
    });
    timings.dom.push(navigation.dom);
    timings.load.push(navigation.load);
    timings.products.push(shown);
    timings.bytes.push(bytes);
    await context.close();
  }
} finally {
  await browser.close();
}

const at = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
};
const ms = (values) => `p50 ${at(values, 0.5).toFixed(0)} ms  p90 ${at(values, 0.9).toFixed(0)} ms  max ${Math.max(...values).toFixed(0)} ms`;
console.log(`storefront: ${ROUNDS} first visits of ${STORE_URL}/ in headless Chromium (fresh context each)`);
console.log(`  DOM ready:          ${ms(timings.dom)}`);
console.log(`  load event:         ${ms(timings.load)}`);
console.log(`  products on screen: ${ms(timings.products)}`);
console.log(`  bytes transferred:  ${at(timings.bytes, 0.5)} (page, assets and API answers, by content-length)`);
