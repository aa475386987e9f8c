// Self-check for the test-support programs (not used by the Rust tests).
//
//   node selftest.mjs               # all shapes + GitHub stand-in (+ browser.mjs if chromium exists)
//   node selftest.mjs --no-browser  # skip the browser.mjs runs
//
// Starts idp.mjs for each shape, fetches discovery and JWKS, runs an authorization-code
// flow with PKCE entirely over HTTP (manual redirects, a small cookie jar, submitting the
// login form), verifies and prints the ID token claims (and the keycloak access-token
// claims), and exercises github-api.mjs (code flow, /user, /user/emails, pagination).
// When /usr/bin/chromium exists it also runs browser.mjs through a tiny relying party on
// app.localhost against idp.mjs (keycloak shape) and github-api.mjs, plus screenshot mode.
// Prints "N passed, N failed" at the end and exits non-zero on any failure.

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
let passed = 0;
let failed = 0;

function check(cond, what) {
  if (cond) {
    passed += 1;
    console.log(`  ok   ${what}`);
  } else {
    failed += 1;
    console.log(`  FAIL ${what}`);
  }
}

/** Spawns a support program and resolves with its READY payload. */
function start(script, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, script)], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${script} not READY in 10s: ${err}`)), 10000);
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^READY (.*)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, ready: JSON.parse(m[1]) });
      }
    });
    child.on('exit', (code) => reject(new Error(`${script} exited ${code}: ${err}`)));
  });
}

/** fetch with manual redirects and a cookie jar (one host, so names are enough). */
class Browser {
  constructor() {
    this.jar = new Map();
  }

  async fetch(url, opts = {}) {
    const headers = { ...(opts.headers || {}) };
    if (this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...opts, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()));
      if (expired || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return res;
  }
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const decode = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));

function verifyJwt(jwt, jwks) {
  const [h, p, s] = jwt.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) return false;
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const opts = header.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key;
  return crypto.verify('sha256', Buffer.from(`${h}.${p}`), opts, Buffer.from(s, 'base64url'));
}

/** Follows redirects, submitting oidc-provider's login/consent forms, until redirect_uri. */
async function authorize(browser, authUrl, redirectUri, login) {
  let url = authUrl;
  let sawLoginForm = false;
  for (let i = 0; i < 20; i += 1) {
    const res = await browser.fetch(url);
    if (res.status >= 300 && res.status < 400) {
      const loc = new URL(res.headers.get('location'), url).href;
      if (loc.startsWith(redirectUri)) return { callback: new URL(loc), sawLoginForm };
      url = loc;
      continue;
    }
    const body = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(body)?.[1];
    const prompt = /name="prompt" value="([^"]+)"/.exec(body)?.[1];
    if (!action || !prompt) throw new Error(`unexpected page ${res.status} at ${url}: ${body.slice(0, 300)}`);
    const form = new URLSearchParams({ prompt });
    if (prompt === 'login') {
      sawLoginForm = true;
      form.set('login', login);
      form.set('password', 'any-password');
    }
    const post = await browser.fetch(new URL(action.replace(/&amp;/g, '&'), url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    if (post.status < 300 || post.status >= 400) throw new Error(`form post answered ${post.status}`);
    const loc = new URL(post.headers.get('location'), url).href;
    if (loc.startsWith(redirectUri)) return { callback: new URL(loc), sawLoginForm };
    url = loc;
  }
  throw new Error('too many redirects');
}

async function oidcFlow(shape, login, extraConfig = {}) {
  const clientId = `client-${shape}`;
  const secret = 'secret-1';
  const redirectUri = 'http://127.0.0.1:65534/oauth2/callback';
  const { child, ready } = await start('idp.mjs', {
    IDP_CONFIG: JSON.stringify({
      shape,
      clients: [{
        client_id: clientId, client_secret: secret, redirect_uris: [redirectUri], post_logout_redirect_uris: [`${redirectUri}/logged-out`],
      }],
      ...extraConfig,
    }),
  });
  try {
    console.log(`\n== ${shape} (${login}) READY ${JSON.stringify(ready)}`);
    const disco = await (await fetch(`${ready.issuer}/.well-known/openid-configuration`)).json();
    check(disco.issuer === ready.issuer, `discovery issuer = ${disco.issuer}`);
    const jwks = await (await fetch(disco.jwks_uri)).json();
    check(jwks.keys.some((k) => k.alg === 'RS256') && jwks.keys.some((k) => k.alg === 'ES256'), 'JWKS has RS256 and ES256 keys');
    check(!!disco.end_session_endpoint, `end_session_endpoint ${disco.end_session_endpoint}`);
    if (shape === 'azure') {
      check(disco.authorization_response_iss_parameter_supported === undefined, 'azure: no authorization_response_iss_parameter_supported');
    }

    const verifier = b64url(crypto.randomBytes(32));
    const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
    const state = b64url(crypto.randomBytes(8));
    const nonce = b64url(crypto.randomBytes(8));
    const auth = new URL(disco.authorization_endpoint);
    Object.entries({
      client_id: clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'openid email profile',
      state,
      nonce,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).forEach(([k, v]) => auth.searchParams.set(k, v));

    // Without PKCE the request must be refused.
    const noPkce = new URL(auth);
    noPkce.searchParams.delete('code_challenge');
    noPkce.searchParams.delete('code_challenge_method');
    const refused = await authorize(new Browser(), noPkce.href, redirectUri, login);
    check(refused.callback.searchParams.get('error') === 'invalid_request', `PKCE required (error=${refused.callback.searchParams.get('error')})`);

    const browser = new Browser();
    const { callback, sawLoginForm } = await authorize(browser, auth.href, redirectUri, login);
    check(sawLoginForm, 'login form shown and submitted');
    check([...browser.jar.keys()].every((n) => n.startsWith('idp_')), `cookie names ${[...browser.jar.keys()].join(',')}`);
    check(callback.searchParams.get('state') === state, 'state round-trips');
    const code = callback.searchParams.get('code');
    check(!!code, 'authorization code issued');
    const iss = callback.searchParams.get('iss');
    if (shape === 'azure') check(iss === null, 'azure: no iss on the callback');
    else check(iss === ready.issuer, `iss on the callback = ${iss}`);

    const tokenRes = await fetch(disco.token_endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
      }).toString(),
    });
    const tokens = await tokenRes.json();
    check(tokenRes.status === 200 && tokens.id_token, `token endpoint ${tokenRes.status} ${tokens.error || ''}`);
    check(verifyJwt(tokens.id_token, jwks), 'ID token signature verifies against JWKS');
    const claims = decode(tokens.id_token);
    console.log(`  ID token claims: ${JSON.stringify(claims)}`);
    check(claims.iss === ready.issuer && claims.aud === clientId && claims.nonce === nonce && claims.sub === login, 'iss/aud/nonce/sub');

    const result = { ready, disco, jwks, tokens, claims };
    if (shape === 'keycloak') {
      check(verifyJwt(tokens.access_token, jwks), 'access token is a JWT signed by the JWKS');
      const at = decode(tokens.access_token);
      console.log(`  access token claims: ${JSON.stringify(at)}`);
      result.at = at;
    }
    const ui = await fetch(disco.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    const uiBody = await ui.json();
    console.log(`  userinfo: ${ui.status} ${JSON.stringify(uiBody)}`);
    check(ui.status === 200 && uiBody.sub === login, 'userinfo accepts the access token');

    if (shape === 'azure') {
      const origin = new URL(ready.issuer).origin;
      const unauth = await fetch(`${origin}/v1.0/me/memberOf`);
      check(unauth.status === 401, `graph without token -> ${unauth.status}`);
      const p1 = await (await fetch(`${origin}/v1.0/me/memberOf`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json();
      check(typeof p1['@odata.nextLink'] === 'string', `graph page 1: ${JSON.stringify(p1)}`);
      const p2 = await (await fetch(p1['@odata.nextLink'], { headers: { authorization: `Bearer ${tokens.access_token}` } })).json();
      check(p2['@odata.nextLink'] === undefined, `graph page 2: ${JSON.stringify(p2)}`);
      result.graph = [...p1.value, ...p2.value];
    }
    // RP-initiated logout: confirmation form, then back to post_logout_redirect_uri.
    const lo = new URL(disco.end_session_endpoint);
    lo.searchParams.set('id_token_hint', tokens.id_token);
    lo.searchParams.set('post_logout_redirect_uri', `${redirectUri}/logged-out`);
    lo.searchParams.set('state', 'bye');
    const loPage = await browser.fetch(lo.href);
    const loHtml = await loPage.text();
    const loAction = /<form[^>]*action="([^"]+)"/.exec(loHtml)?.[1];
    const loFields = Object.fromEntries([...loHtml.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const loPost = await browser.fetch(new URL(loAction, lo).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...loFields, logout: 'yes' }).toString(),
    });
    const loLoc = loPost.headers.get('location') || '';
    check(loLoc.startsWith(`${redirectUri}/logged-out`) && loLoc.includes('state=bye'), `RP-initiated logout -> ${loLoc}`);
    check(!browser.jar.has('idp_session'), 'IdP session cookie cleared by logout');

    // Code reuse must fail (and revokes the tokens issued from it, so this comes last).
    const again = await fetch(disco.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
        client_id: clientId, client_secret: secret,
      }).toString(),
    });
    check(again.status === 400, `code is single use (client_secret_post accepted, reuse -> ${again.status})`);

    return result;
  } finally {
    child.kill('SIGTERM');
  }
}

async function githubFlow() {
  const redirectUri = 'http://127.0.0.1:65533/oauth2/callback';
  const { child, ready } = await start('github-api.mjs', {
    GITHUB_CONFIG: JSON.stringify({ clients: [{ client_id: 'gh', client_secret: 'gh-s', redirect_uris: [redirectUri] }] }),
  });
  try {
    console.log(`\n== github READY ${JSON.stringify(ready)}`);
    const login = async (user, scope = 'read:user user:email read:org') => {
      const verifier = b64url(crypto.randomBytes(32));
      const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
      const q = new URLSearchParams({
        client_id: 'gh', redirect_uri: redirectUri, state: 'st', scope, code_challenge: challenge, code_challenge_method: 'S256',
      });
      const page = await (await fetch(`${ready.base}/login/oauth/authorize?${q}`)).text();
      const hidden = Object.fromEntries([...page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2].replace(/&#38;/g, '&')]));
      const post = await fetch(`${ready.base}/login/oauth/authorize`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...hidden, login: user }).toString(),
      });
      const cb = new URL(post.headers.get('location'));
      const code = cb.searchParams.get('code');
      const exchange = (body) => fetch(`${ready.base}/login/oauth/access_token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams(body).toString(),
      }).then((r) => r.json());
      const base = { client_id: 'gh', client_secret: 'gh-s', code, redirect_uri: redirectUri };
      return { cb, exchange, base, verifier };
    };

    const first = await login('octocat');
    check(first.cb.searchParams.get('state') === 'st' && first.cb.searchParams.get('code'), 'authorize redirects with code and state');
    const wrongVerifier = await first.exchange({ ...first.base, code_verifier: 'wrong' });
    check(wrongVerifier.error === 'bad_verification_code', `wrong verifier -> ${wrongVerifier.error}`);
    // The code was burnt by the failed attempt: start again.
    const second = await login('octocat');
    const tok = await second.exchange({ ...second.base, code_verifier: second.verifier });
    check(tok.token_type === 'bearer' && tok.access_token?.startsWith('gho_'), `token: ${JSON.stringify(tok)}`);
    const reuse = await second.exchange({ ...second.base, code_verifier: second.verifier });
    check(reuse.error === 'bad_verification_code', `code reuse -> ${reuse.error}`);
    const wrongSecret = await second.exchange({ ...second.base, client_secret: 'nope', code_verifier: second.verifier });
    check(wrongSecret.error === 'incorrect_client_credentials', `wrong secret -> ${wrongSecret.error}`);

    const get = (p, token, scheme = 'Bearer') => fetch(`${ready.base}${p}`, { headers: { authorization: `${scheme} ${token}` } });
    const user = await (await get('/user', tok.access_token)).json();
    check(user.login === 'octocat' && user.email === null, `/user: ${JSON.stringify(user)}`);
    const emails = await (await get('/api/v3/user/emails', tok.access_token, 'token')).json();
    check(emails.some((e) => e.primary && e.verified && e.email === 'octocat@example.test'), `/api/v3/user/emails: ${JSON.stringify(emails)}`);
    const teams = await (await get('/user/teams', tok.access_token)).json();
    check(teams[0]?.slug === 'platform' && teams[0]?.organization?.login === 'devlabai', `/user/teams: ${teams.map((t) => `${t.organization.login}/${t.slug}`)}`);
    const bad = await get('/user', 'nope');
    check(bad.status === 401 && (await bad.json()).message === 'Bad credentials', '/user with a bad token -> 401 Bad credentials');

    const many = await login('manyorgs');
    const mtok = await many.exchange({ ...many.base, code_verifier: many.verifier });
    const r1 = await get('/user/orgs', mtok.access_token);
    const page1 = await r1.json();
    const link = r1.headers.get('link');
    check(page1.length === 30 && /rel="next"/.test(link), `/user/orgs page 1: ${page1.length} orgs, Link: ${link}`);
    const next = /<([^>]+)>; rel="next"/.exec(link)[1];
    const r2 = await fetch(next, { headers: { authorization: `token ${mtok.access_token}` } });
    const page2 = await r2.json();
    check(page2.length === 5 && page2.at(-1).login === 'devlabai' && !/rel="next"/.test(r2.headers.get('link')), `/user/orgs page 2: ${page2.map((o) => o.login)}`);
    const small = await get('/api/v3/user/orgs?per_page=10&page=4', mtok.access_token);
    check((await small.json()).length === 5, 'per_page=10&page=4 -> 5 orgs');

    const rl = await login('ratelimited');
    const rtok = await rl.exchange({ ...rl.base, code_verifier: rl.verifier });
    const rr = await get('/user', rtok.access_token);
    const rbody = await rr.json();
    check(rr.status === 403 && rr.headers.get('x-ratelimit-remaining') === '0' && /rate limit/.test(rbody.message), `ratelimited -> ${rr.status} remaining=${rr.headers.get('x-ratelimit-remaining')} reset=${rr.headers.get('x-ratelimit-reset')}`);

    const ns = await login('octocat', 'read:user');
    const ntok = await ns.exchange({ ...ns.base, code_verifier: ns.verifier });
    check((await get('/user/emails', ntok.access_token)).status === 404, 'without user:email scope /user/emails -> 404');
  } finally {
    child.kill('SIGTERM');
  }
}

/** Checks that closing stdin stops a support program. */
async function stdinLifetime() {
  const { child } = await start('idp.mjs', { IDP_CONFIG: '{"shape":"generic","clients":[]}' });
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  child.stdin.end();
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 3000))]);
  check(code === 0, `idp exits when stdin closes (${code})`);
}


/** Runs browser.mjs with a script; resolves with { code, out }. */
function runBrowser(scriptObj) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(here, 'browser.mjs')], {
      env: { ...process.env, BROWSER_SCRIPT: JSON.stringify(scriptObj) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', () => {});
    child.on('exit', (code) => resolve({ code, out }));
  });
}

/** A tiny relying party: / starts the code flow, /cb finishes it and shows the email. */
async function miniRp() {
  const pending = new Map();
  const rp = { config: undefined };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    const c = rp.config;
    try {
      if (url.pathname === '/') {
        const state = b64url(crypto.randomBytes(8));
        const verifier = b64url(crypto.randomBytes(32));
        pending.set(state, verifier);
        const auth = new URL(c.authorize);
        Object.entries({
          client_id: c.clientId, redirect_uri: c.redirectUri, response_type: 'code', scope: c.scope, state,
          code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
        }).forEach(([k, v]) => auth.searchParams.set(k, v));
        res.writeHead(302, { location: auth.href });
        return res.end();
      }
      if (url.pathname === '/cb') {
        const verifier = pending.get(url.searchParams.get('state'));
        const tok = await (await fetch(c.token, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: new URLSearchParams({
            grant_type: 'authorization_code', code: url.searchParams.get('code'), redirect_uri: c.redirectUri,
            code_verifier: verifier, client_id: c.clientId, client_secret: c.secret,
          }).toString(),
        })).json();
        const email = await c.email(tok);
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end(`<html><head><title>App</title></head><body><h1>Signed in</h1><p>as ${email}</p></body></html>`);
      }
      res.writeHead(404);
      return res.end();
    } catch (err) {
      res.writeHead(500);
      return res.end(String(err));
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  rp.base = `http://app.localhost:${server.address().port}`;
  rp.close = () => server.close();
  return rp;
}

async function browserChecks() {
  const shots = fs.mkdtempSync(path.join(os.tmpdir(), 'authgate-shots-'));
  console.log(`\n== browser.mjs (screenshots in ${shots})`);

  const rp = await miniRp();
  const redirectUri = `${rp.base}/cb`;
  for (const shape of ['generic', 'azure', 'keycloak']) {
    const idp = await start('idp.mjs', {
      IDP_CONFIG: JSON.stringify({ shape, clients: [{ client_id: 'rp', client_secret: 'rp-s', redirect_uris: [redirectUri] }] }),
    });
    try {
      const disco = await (await fetch(`${idp.ready.issuer}/.well-known/openid-configuration`)).json();
      rp.config = {
        authorize: disco.authorization_endpoint, token: disco.token_endpoint, clientId: 'rp', secret: 'rp-s',
        redirectUri, scope: 'openid email profile', email: async (tok) => decode(tok.id_token).email,
      };
      const r = await runBrowser({
        start_url: `${rp.base}/`, login: 'alice', kind: 'oidc', expect_text: 'alice@example.test', screenshot_dir: shots, name: `selftest-${shape}`,
      });
      check(r.code === 0 && /^RESULT /m.test(r.out), `browser ${shape} flow: ${r.out.trim()}`);
      if (shape === 'keycloak') {
        const bad = await runBrowser({
          start_url: `${rp.base}/`, login: 'bob', kind: 'oidc', expect_text: 'alice@example.test', screenshot_dir: shots, name: 'selftest-wrong',
        });
        check(bad.code === 1 && /^FAIL /m.test(bad.out), `browser reports a wrong expectation: ${bad.out.split('\n')[0]}`);
      }
    } finally {
      idp.child.kill('SIGTERM');
    }
  }

  const gh = await start('github-api.mjs', {
    GITHUB_CONFIG: JSON.stringify({ clients: [{ client_id: 'rp', client_secret: 'rp-s', redirect_uris: [redirectUri] }] }),
  });
  try {
    const base = gh.ready.base;
    rp.config = {
      authorize: `${base}/login/oauth/authorize`, token: `${base}/login/oauth/access_token`, clientId: 'rp', secret: 'rp-s',
      redirectUri, scope: 'user:email read:org',
      email: async (tok) => {
        const emails = await (await fetch(`${base}/api/v3/user/emails`, { headers: { authorization: `token ${tok.access_token}` } })).json();
        return emails.find((e) => e.primary && e.verified)?.email;
      },
    };
    const r = await runBrowser({
      start_url: `${rp.base}/`, login: 'octocat', kind: 'github', expect_text: 'octocat@example.test', screenshot_dir: shots, name: 'selftest-github',
    });
    check(r.code === 0 && /^RESULT /m.test(r.out), `browser github flow: ${r.out.trim()}`);
    const s = await runBrowser({ mode: 'screenshot', url: `${base}/nope`, name: 'selftest-404', screenshot_dir: shots });
    check(s.code === 0 && /"status":404/.test(s.out), `browser screenshot mode: ${s.out.trim()}`);
  } finally {
    gh.child.kill('SIGTERM');
    rp.close();
  }
}

try {
  const g = await oidcFlow('generic', 'alice');
  check(g.claims.email === 'alice@example.test' && g.claims.email_verified === true, 'generic: email claims');
  check(JSON.stringify(g.claims.groups) === '["g-admins","g-staff"]', 'generic: groups in ID token');

  const az = await oidcFlow('azure', 'alice', { tenant: '11111111-2222-3333-4444-555555555555' });
  check(az.claims.tid === '11111111-2222-3333-4444-555555555555' && /^[0-9a-f-]{36}$/.test(az.claims.oid), 'azure: tid/oid');
  check(az.claims.groups?.length === 2 && az.claims.roles?.includes('App.Reader'), 'azure: groups (object ids) and roles');
  const ov = await oidcFlow('azure', 'overage');
  check(!('groups' in ov.claims) && ov.claims.hasgroups === true && ov.claims._claim_names?.groups === 'src1'
    && ov.claims._claim_sources?.src1?.endpoint?.endsWith('/v1.0/me/memberOf'), 'azure overage: _claim_names/_claim_sources/hasgroups');
  check(ov.graph.filter((o) => o['@odata.type'] === '#microsoft.graph.group').length === 3, 'azure overage: 3 groups over two Graph pages');
  const ne = await oidcFlow('azure', 'noemail');
  check(!('email' in ne.claims), 'azure noemail: no email claim');

  const kc = await oidcFlow('keycloak', 'alice', { realm: 'demo' });
  check(!('realm_access' in kc.claims) && !('resource_access' in kc.claims), 'keycloak: no roles in the ID token');
  check(JSON.stringify(kc.at.realm_access) === '{"roles":["admin","user"]}'
    && JSON.stringify(kc.at.resource_access) === '{"client-keycloak":{"roles":["editor"]}}'
    && kc.at.aud === 'client-keycloak' && kc.at.email === 'alice@example.test'
    && JSON.stringify(kc.at.groups) === '["/g-admins","/g-staff"]', 'keycloak: access token roles/aud/email/groups');

  await githubFlow();
  await stdinLifetime();
  if (!process.argv.includes('--no-browser') && fs.existsSync('/usr/bin/chromium')) await browserChecks();
  else console.log('\n(browser.mjs checks skipped)');
} catch (err) {
  failed += 1;
  console.log(`  FAIL ${err.stack}`);
}

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
