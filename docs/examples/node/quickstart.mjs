// The common flows of the API in Node.js 20+: built-in fetch, no npm packages.
//
//   BASE_URL=http://127.0.0.1:3000 OWNER_EMAIL=... OWNER_PASSWORD=... node docs/examples/node/quickstart.mjs
//
// 1. sign in as a tenant admin (the owner);
// 2. create an API key (its secret is shown once) and use it from then on;
// 3. upsert a customer by your own `external_id`;
// 4. upload a person photo and a garment photo: create each, PUT the bytes
//    to the presigned URL, confirm;
// 5. start a try-on and poll it until it finishes; the balance drops by its price;
// 6. webhooks: start a local receiver, register it as an endpoint, send a
//    test event, verify the signature of what arrives;
// 7. clean up: delete the endpoint, revoke the key.
//
// The tenant needs a few credits (a platform admin grants them:
// `POST /v1/tenants/{id}/credits`); tests/api/bootstrap.py makes such a tenant.
// Exits non-zero on any unexpected answer.

import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { selfCheck, verify, InvalidSignature } from './webhook-signature.mjs';

const BASE_URL = (process.env.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
const IMAGES = new URL('../images/', import.meta.url);

class Unexpected extends Error {}

const say = (text) => console.log(`[node] ${text}`);

function check(condition, what) {
  if (!condition) throw new Unexpected(what);
}

/** One HTTP exchange; answers the parsed JSON (or the raw bytes, or null).
 *  Any status outside `expect` is an error showing the API's error body. */
async function request(method, url, { body, data, headers = {}, expect = [200] } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  } else if (data !== undefined) {
    init.body = data;
  }
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  const bytes = Buffer.from(await response.arrayBuffer());
  if (!expect.includes(response.status)) {
    throw new Unexpected(`${method} ${url} answered ${response.status} (expected ${expect}): ${bytes}`);
  }
  if (bytes.length === 0) return null;
  return (response.headers.get('content-type') || '').includes('json') ? JSON.parse(bytes) : bytes;
}

/** The API with one credential: `Authorization: Bearer <token>` for a person,
 *  `X-API-Key: <key>` for a machine. */
class Api {
  constructor({ token, apiKey }) {
    this.headers = { accept: 'application/json' };
    if (token) this.headers.authorization = `Bearer ${token}`;
    if (apiKey) this.headers['x-api-key'] = apiKey;
  }

  call(method, path, body, { expect = [200], headers = {} } = {}) {
    return request(method, BASE_URL + path, { body, expect, headers: { ...this.headers, ...headers } });
  }
}

async function poll(what, fetchOnce, done, { timeoutMs = 90_000, intervalMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fetchOnce();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Unexpected(`${what}: not done after ${timeoutMs / 1000} s: ${JSON.stringify(value)}`);
    await sleep(intervalMs);
  }
}

async function uploadPhoto(api, customerId, kind) {
  const data = await readFile(new URL(`${kind}.png`, IMAGES));
  const photo = await api.call('POST', `/v1/customers/${customerId}/photos`,
    { content_type: 'image/png', size_bytes: data.length, kind }, { expect: [201] });
  const { method, url, headers } = photo.upload;
  // Straight to the object store, with exactly the headers it names (they are signed).
  await request(method, url, { data, headers, expect: [200, 201, 204] });
  const ready = await api.call('POST', `/v1/customers/${customerId}/photos/${photo.id}/confirm`);
  check(ready.status === 'ready' && ready.size_bytes === data.length, `photo not ready: ${JSON.stringify(ready)}`);
  say(`  ${kind} photo ${photo.id}: uploaded ${data.length} bytes, confirmed ready`);
  return photo.id;
}

/** A tiny webhook receiver on 127.0.0.1 (an ephemeral port): verifies each
 *  delivery with the endpoint's secret, 204 if good, 400 if not. */
async function startReceiver() {
  const receiver = { secret: null, verified: [], rejected: [] };
  receiver.server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try {
        verify(receiver.secret, req.headers, body);
      } catch (error) {
        if (!(error instanceof InvalidSignature)) throw error;
        receiver.rejected.push(error.message);
        res.writeHead(400).end();
        return;
      }
      receiver.verified.push({ webhookId: req.headers['webhook-id'], payload: JSON.parse(body) });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${receiver.server.address().port}/webhooks`;
  return receiver;
}

async function main() {
  const run = randomUUID().slice(0, 8);
  const email = process.env.OWNER_EMAIL;
  const password = process.env.OWNER_PASSWORD;
  check(email && password, 'set OWNER_EMAIL and OWNER_PASSWORD');

  say(`signing in as ${email} at ${BASE_URL}`);
  const login = await request('POST', `${BASE_URL}/v1/auth/login`, { body: { email, password } });
  const owner = new Api({ token: login.access_token });
  say(`  signed in: role ${login.user.role}, tenant ${login.user.tenant_id}`);

  say('creating an API key (the secret is shown only in this answer)');
  const key = await owner.call('POST', '/v1/api-keys', {
    name: `node example ${run}`,
    expires_in_days: 1,
    scopes: ['customers:read', 'customers:write', 'tryons:read', 'tryons:write', 'credits:read', 'webhooks:manage'],
  }, { expect: [201] });
  check(/^sk_(live|test)_/.test(key.secret), `unexpected key: ${JSON.stringify(key)}`);
  const shop = new Api({ apiKey: key.secret });
  say(`  key ${key.id} (${key.prefix}...${key.last_four})`);

  let receiver;
  let endpoint;
  try {
    const { balance } = await shop.call('GET', '/v1/credits');
    say(`balance: ${balance} credits`);
    check(balance >= 1, 'the tenant has no credits: a platform admin grants some with '
      + 'POST /v1/tenants/{id}/credits (tests/api/bootstrap.py does)');

    say('upserting a customer by external_id');
    const customer = await shop.call('POST', '/v1/customers', {
      external_id: `shopper-${run}`, name: 'Ada', email: `ada-${run}@example.com`, metadata: { tier: 'gold' },
    }, { expect: [201] });
    const again = await shop.call('POST', '/v1/customers', { external_id: `shopper-${run}`, name: 'Ada Lovelace' });
    check(again.id === customer.id && again.name === 'Ada Lovelace', `upsert did not update: ${JSON.stringify(again)}`);
    say(`  customer ${customer.id} (created 201, updated 200)`);

    say('uploading photos: create, PUT to the presigned URL, confirm');
    const person = await uploadPhoto(shop, customer.id, 'person');
    const garment = await uploadPhoto(shop, customer.id, 'garment');

    say('starting a try-on');
    const session = await shop.call('POST', '/v1/tryons', {
      customer_id: customer.id, photo_id: person, quality: 'sd',
      items: [{ product_id: `sku-${run}`, garment_photo_id: garment, size: 'M' }],
    }, { expect: [201], headers: { 'idempotency-key': `tryon-${run}` } });
    const price = session.pricing.total;
    check(session.charge.balance_after === balance - price, `charge does not add up: ${JSON.stringify(session)}`);
    say(`  session ${session.id}: ${session.status}, charged ${price} credit(s)`);
    const done = await poll('the try-on', () => shop.call('GET', `/v1/tryons/${session.id}`),
      (s) => !['queued', 'processing'].includes(s.status));
    check(done.status === 'completed', `the try-on did not complete: ${JSON.stringify(done)}`);
    const image = await request('GET', done.items[0].result_url);
    check(Buffer.isBuffer(image) && image.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47])),
      'the result is not a PNG');
    say(`  completed: ${done.progress.completed}/${done.progress.total} items, result ${image.length} bytes of PNG`);
    const after = (await shop.call('GET', '/v1/credits')).balance;
    check(after === balance - price, `balance ${after}, expected ${balance - price}`);
    say(`  balance ${balance} -> ${after}`);

    say("webhooks: self-check of the signature scheme with the specification's vector");
    selfCheck();
    receiver = await startReceiver();
    say(`  receiver listening on ${receiver.url}`);
    endpoint = await shop.call('POST', '/v1/webhooks', {
      url: receiver.url, description: `node example ${run}`, event_types: ['webhook.test'],
    }, { expect: [201] });
    receiver.secret = endpoint.secret; // shown once: store it
    const sent = await shop.call('POST', `/v1/webhooks/${endpoint.id}/test`, undefined, { expect: [202] });
    say(`  endpoint ${endpoint.id}, test delivery ${sent.delivery_id} queued`);
    const got = await poll('a verified delivery', async () => receiver.verified[0], Boolean, { timeoutMs: 60_000 })
      .catch((error) => { throw new Unexpected(`${error.message} (rejected: ${receiver.rejected})`); });
    check(got.payload.type === 'webhook.test', `unexpected payload: ${JSON.stringify(got.payload)}`);
    say(`  received ${got.payload.type} (${got.webhookId}): signature verified`);
    const page = await poll('the delivery log', () => shop.call('GET', `/v1/webhooks/${endpoint.id}/deliveries`),
      (p) => p.data.some((d) => d.id === sent.delivery_id && d.status === 'succeeded'), { timeoutMs: 30_000 });
    const logged = page.data.find((d) => d.id === sent.delivery_id);
    check(logged.webhook_id === got.webhookId, `the log names another webhook-id: ${JSON.stringify(logged)}`);
    const last = logged.attempts[logged.attempts.length - 1];
    say(`  delivery log: ${logged.status} after ${logged.attempt_count} attempt(s), answered ${last.status_code}`);
  } finally {
    if (endpoint) await shop.call('DELETE', `/v1/webhooks/${endpoint.id}`, undefined, { expect: [204] });
    if (receiver) receiver.server.close();
    await owner.call('DELETE', `/v1/api-keys/${key.id}`);
    say('cleaned up: endpoint deleted, key revoked');
  }
  say('all flows ok');
}

main().catch((error) => {
  console.error(`[node] FAILED: ${error.stack || error}`);
  process.exit(1);
});
