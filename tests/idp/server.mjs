// A real OpenID provider for the SSO end-to-end tests: npm `oidc-provider`
// (OpenID Certified), its development login and consent pages, PKCE required.
//
//   IDP_MODULES=<node_modules> IDP_CONFIG='<json>' node tests/idp/server.mjs
//
// IDP_CONFIG: {"clients": [{client_id, client_secret, redirect_uris,
// token_endpoint_auth_method?}], "accounts": {"<login>": {claims}}}. It
// listens on 127.0.0.1, on a port the system picks, and prints
// `IDP_LISTENING <issuer>` once it serves. The tests start one per test and
// kill it when done (tests/support/lib.rs, `Idp`).
//
// Two test-only routes drive what a real IdP would decide on its own:
// - `PUT /test/accounts/<login>` (JSON claims): the account's claims from now
//   on (a group membership that changes between two sign-ins);
// - `PUT /test/tamper/<client_id>` (JSON `{aud?, nonce?, exp_offset?}`): the
//   ID tokens the token endpoint answers that client are re-signed with the
//   provider's own key after these claims are changed (`exp_offset`: seconds
//   from now for `exp`, `iat` an hour before it), so a wrong audience, a
//   wrong nonce or an expired token arrive exactly as a faulty or hostile
//   IdP would send them, with a valid signature.

import { createServer } from 'node:http';
import { generateKeyPairSync, createSign, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.IDP_MODULES;
if (!modules) throw new Error('IDP_MODULES is not set: run tests/idp/install.sh');
// ESM ignores NODE_PATH: the package is imported by its path outside the clone.
const packageDir = join(modules, 'oidc-provider');
const { main } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const { default: Provider } = await import(pathToFileURL(join(packageDir, main)).href);

const config = JSON.parse(process.env.IDP_CONFIG || '{}');
const accounts = new Map(Object.entries(config.accounts || {}));
const tampering = new Map();

const kid = `test-${randomUUID()}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privateJwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };

const b64url = (value) => Buffer.from(value).toString('base64url');

function resign(idToken, change) {
  const [header, payload] = idToken.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  if (change.aud !== undefined) claims.aud = change.aud;
  if (change.nonce !== undefined) claims.nonce = change.nonce;
  if (change.exp_offset !== undefined) {
    claims.exp = Math.floor(Date.now() / 1000) + change.exp_offset;
    claims.iat = claims.exp - 3600;
  }
  const input = `${header}.${b64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(input).sign(privateKey);
  return `${input}.${b64url(signature)}`;
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: (config.clients || []).map((c) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...c,
    })),
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, ...(accounts.get(id) || {}) };
        },
      };
    },
    claims: {
      openid: ['sub', 'hd'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
      groups: ['groups'],
    },
    // Scope-requested claims in the ID token itself (as Okta and Google send
    // them), not only at the userinfo endpoint.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: [randomUUID()] },
    jwks: { keys: [privateJwk] },
  });

  provider.use(async (ctx, next) => {
    const account = ctx.path.match(/^\/test\/accounts\/([^/]+)$/);
    const tamper = ctx.path.match(/^\/test\/tamper\/([^/]+)$/);
    if (ctx.method === 'PUT' && (account || tamper)) {
      const body = await readJson(ctx.req);
      if (account) accounts.set(decodeURIComponent(account[1]), body);
      else tampering.set(decodeURIComponent(tamper[1]), body);
      ctx.status = 204;
      return;
    }
    await next();
    if (ctx.path === '/token' && ctx.status === 200 && ctx.body && ctx.body.id_token) {
      const change = tampering.get(ctx.oidc?.client?.clientId);
      if (change) ctx.body = { ...ctx.body, id_token: resign(ctx.body.id_token, change) };
    }
  });

  server.on('request', provider.callback());
  console.log(`IDP_LISTENING ${issuer}`);
});
