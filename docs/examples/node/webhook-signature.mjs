// Verifying a webhook the platform sent (Standard Webhooks, https://www.standardwebhooks.com).
//
// Every delivery carries three headers:
//
//   webhook-id:        msg_...       the same on every retry of one delivery: deduplicate on it
//   webhook-timestamp: 1614265330    Unix seconds when this attempt was signed
//   webhook-signature: v1,<base64>   space-separated if there are several
//
// The signature is HMAC-SHA256, keyed by the base64-decoded part of the
// endpoint's secret after `whsec_`, over `<webhook-id>.<webhook-timestamp>.<raw body>`.
// Verify the raw bytes as received, before parsing the JSON.
//
// Node.js built-ins only. `node webhook-signature.mjs` runs the self-check.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const TOLERANCE_SECONDS = 5 * 60;

export class InvalidSignature extends Error {}

/** The `webhook-signature` value the platform computes (shared/src/webhook_signing.rs). */
export function sign(secret, messageId, timestamp, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const mac = createHmac('sha256', key);
  mac.update(`${messageId}.${timestamp}.`);
  mac.update(body);
  return `v1,${mac.digest('base64')}`;
}

/** Throws InvalidSignature unless `body` (a Buffer or string) was signed with `secret` recently.
 *  `headers`: a plain object with lower-case names (Node's `req.headers`) or a fetch `Headers`. */
export function verify(secret, headers, body, now = Date.now() / 1000) {
  const get = (name) => (typeof headers.get === 'function' ? headers.get(name) : headers[name]);
  const messageId = get('webhook-id');
  const timestamp = Number(get('webhook-timestamp'));
  const signatures = (get('webhook-signature') || '').split(' ').filter(Boolean);
  if (!messageId || !Number.isInteger(timestamp) || signatures.length === 0) {
    throw new InvalidSignature('missing or malformed webhook headers');
  }
  if (Math.abs(now - timestamp) > TOLERANCE_SECONDS) {
    throw new InvalidSignature('the timestamp is too old or too new (replayed?)');
  }
  const expected = Buffer.from(sign(secret, messageId, timestamp, body).slice(3));
  for (const candidate of signatures) {
    const [version, value = ''] = candidate.split(/,(.*)/s);
    const given = Buffer.from(value);
    if (version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected)) return;
  }
  throw new InvalidSignature('no signature matches');
}

/** The Standard Webhooks specification's own test vector (the server's signer
 *  is tested against it too), and two forgeries. */
export function selfCheck() {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const body = '{"test": 2432232314}';
  const headers = {
    'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    'webhook-timestamp': '1614265330',
    'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  };
  if (sign(secret, headers['webhook-id'], 1614265330, body) !== headers['webhook-signature']) {
    throw new Error('the signer does not reproduce the specification vector');
  }
  verify(secret, headers, body, 1614265330 + 10);
  for (const [forged, at] of [['{"test": 2432232315}', 1614265330], [body, 1614265330 + 3600]]) {
    let refused = false;
    try {
      verify(secret, headers, forged, at);
    } catch (error) {
      if (!(error instanceof InvalidSignature)) throw error;
      refused = true;
    }
    if (!refused) throw new Error('a forged or stale delivery was accepted');
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  selfCheck();
  console.log('webhook signature self-check: ok');
}
