// A stand-in for GitHub's OAuth web flow and REST API, for authgate's integration tests.
//
// GitHub is not an OpenID Provider (no discovery, no ID token; identity comes from the
// REST API) and cannot be reached from tests, so this server plays its part. It follows
// GitHub's documented request and response shapes ("Authorizing OAuth apps",
// "Troubleshooting OAuth app access token request errors", REST `GET /user`,
// `/user/emails`, `/user/orgs`, `/user/teams`, pagination with `Link` headers, primary
// rate limit responses).
//
// Usage:
//   GITHUB_CONFIG='{"clients":[{"client_id":"gh","client_secret":"s","redirect_uris":["http://127.0.0.1:9/cb"]}]}' node github-api.mjs
// GITHUB_CONFIG is optional. Without it one client is registered:
//   client_id "gh-client", client_secret "gh-secret", any loopback redirect_uri.
// A client without redirect_uris accepts any http://127.0.0.1 / localhost / *.localhost URL.
//
// Startup protocol: listens on 127.0.0.1 with an OS-picked port and prints one line:
//   READY {"base":"http://127.0.0.1:PORT","port":PORT}
// Exits on SIGTERM/SIGINT, and when stdin is a pipe that closes.
//
// Endpoints (base = http://127.0.0.1:PORT):
//   GET  /login/oauth/authorize   client_id, redirect_uri, state, scope, code_challenge,
//                                 code_challenge_method=S256 -> HTML form (#login text field,
//                                 #authorize button) -> redirect_uri?code=...&state=...
//   POST /login/oauth/access_token form-encoded client_id, client_secret (or Basic auth),
//                                 code, redirect_uri, code_verifier. JSON with
//                                 `Accept: application/json`, else form-encoded. Errors are
//                                 HTTP 200 with {"error","error_description","error_uri"}.
//   REST at the root (api.github.com shape) and under /api/v3 (GitHub Enterprise shape):
//   GET /user, /user/emails, /user/orgs, /user/teams   (per_page default 30, max 100; page)
//   Authorization: `Bearer <token>` or `token <token>`; otherwise 401 Bad credentials.
//
// Scopes are enforced as GitHub does for OAuth app tokens:
//   /user/emails needs `user:email` or `user` (else 404 Not Found);
//   /user/orgs lists private memberships only with `read:org`, `write:org`, `admin:org` or
//     `user` (every membership here is private, so without them the list is empty);
//   /user/teams needs `read:org`, `write:org`, `admin:org`, `user` or `repo` (else 403).
//
// Users (login typed at the form; any other login gets a default user):
//   id  login       public email            emails                                          orgs                          teams
//   1   octocat     null                    octocat@example.test (primary, verified),       devlabai                      devlabai/platform
//                                           octo-unverified@example.test (unverified)
//   2   unverified  null                    unverified@example.test (primary, unverified)   devlabai                      -
//   3   outsider    outsider@example.test   outsider@example.test (primary, verified)       -                             -
//   4   manyorgs    null                    manyorgs@example.test (primary, verified)       org-01..org-34, devlabai      org-01/members..org-34/members,
//                                                                                           (35 orgs, devlabai last)      devlabai/platform (35 teams)
//   5   ratelimited null                    ratelimited@example.test (primary, verified)    devlabai                      -
//       every REST call by ratelimited answers 403 with x-ratelimit-remaining: 0.
//   *   <other>     null                    <login>@example.test (primary, verified)        -                             -

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------
const ORGS = {};
function org(login) {
  if (!ORGS[login]) {
    const id = login === 'devlabai' ? 9919 : 100000 + Object.keys(ORGS).length;
    ORGS[login] = { login, id, description: `${login} organization` };
  }
  return ORGS[login];
}

const manyOrgNames = Array.from({ length: 34 }, (_, i) => `org-${String(i + 1).padStart(2, '0')}`);

const USERS = {
  octocat: {
    id: 1,
    name: 'The Octocat',
    email: null,
    emails: [
      { email: 'octocat@example.test', primary: true, verified: true, visibility: 'private' },
      { email: 'octo-unverified@example.test', primary: false, verified: false, visibility: null },
    ],
    orgs: ['devlabai'],
    teams: [['devlabai', 'platform', 'Platform']],
  },
  unverified: {
    id: 2,
    name: 'Unverified User',
    email: null,
    emails: [{ email: 'unverified@example.test', primary: true, verified: false, visibility: 'private' }],
    orgs: ['devlabai'],
    teams: [],
  },
  outsider: {
    id: 3,
    name: 'Outside Collaborator',
    email: 'outsider@example.test',
    emails: [{ email: 'outsider@example.test', primary: true, verified: true, visibility: 'public' }],
    orgs: [],
    teams: [],
  },
  manyorgs: {
    id: 4,
    name: 'Many Orgs',
    email: null,
    emails: [{ email: 'manyorgs@example.test', primary: true, verified: true, visibility: 'private' }],
    orgs: [...manyOrgNames, 'devlabai'],
    teams: [...manyOrgNames.map((o) => [o, 'members', 'Members']), ['devlabai', 'platform', 'Platform']],
  },
  ratelimited: {
    id: 5,
    name: 'Rate Limited',
    email: null,
    emails: [{ email: 'ratelimited@example.test', primary: true, verified: true, visibility: 'private' }],
    orgs: ['devlabai'],
    teams: [],
    rateLimited: true,
  },
};

function userFor(login) {
  if (USERS[login]) return { login, ...USERS[login] };
  const id = 1000 + (crypto.createHash('sha256').update(login).digest().readUInt32BE(0) % 1000000);
  return {
    login,
    id,
    name: login,
    email: null,
    emails: [{ email: `${login}@example.test`, primary: true, verified: true, visibility: 'private' }],
    orgs: [],
    teams: [],
  };
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------
let config;
try {
  config = JSON.parse(process.env.GITHUB_CONFIG || '{}');
} catch (err) {
  console.error(`github-api: GITHUB_CONFIG is not valid JSON: ${err.message}`);
  process.exit(2);
}
const clients = new Map(
  (config.clients?.length ? config.clients : [{ client_id: 'gh-client', client_secret: 'gh-secret' }])
    .map((c) => [c.client_id, c]),
);

const codes = new Map(); // code -> { clientId, redirectUri, login, scope, challenge, expires }
const tokens = new Map(); // token -> { login, scope, clientId }

function isLoopbackUrl(u) {
  try {
    const { protocol, hostname } = new URL(u);
    return (protocol === 'http:' || protocol === 'https:')
      && (hostname === '127.0.0.1' || hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]');
  } catch {
    return false;
  }
}

function redirectAllowed(client, uri) {
  if (!client.redirect_uris?.length) return isLoopbackUrl(uri);
  return client.redirect_uris.includes(uri);
}

// ---------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function html(res, status, title, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body>${body}</body></html>`);
}

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

function redirect(res, location) {
  res.writeHead(302, { location, 'cache-control': 'no-store' });
  res.end();
}

async function readForm(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const s256 = (verifier) => crypto.createHash('sha256').update(verifier).digest('base64url');

// ---------------------------------------------------------------------------
// OAuth web flow
// ---------------------------------------------------------------------------
function authorizeError(res, redirectUri, state, error, description) {
  const u = new URL(redirectUri);
  u.searchParams.set('error', error);
  u.searchParams.set('error_description', description);
  u.searchParams.set('error_uri', '/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/');
  if (state) u.searchParams.set('state', state);
  return redirect(res, u.href);
}

function authorizeGet(req, res, url) {
  const q = url.searchParams;
  const client = clients.get(q.get('client_id'));
  if (!client) return html(res, 404, 'Not Found', '<h1 id="error">Application not found (unknown client_id)</h1>');
  const redirectUri = q.get('redirect_uri') || client.redirect_uris?.[0];
  if (!redirectUri) return html(res, 400, 'Error', '<h1 id="error">No redirect_uri registered</h1>');
  if (!redirectAllowed(client, redirectUri)) {
    if (client.redirect_uris?.[0]) {
      return authorizeError(res, client.redirect_uris[0], q.get('state'), 'redirect_uri_mismatch',
        'The redirect_uri MUST match the registered callback URL for this application.');
    }
    return html(res, 400, 'Error', '<h1 id="error">redirect_uri_mismatch</h1>');
  }
  const method = q.get('code_challenge_method');
  if (q.get('code_challenge') && method && method !== 'S256') {
    return authorizeError(res, redirectUri, q.get('state'), 'invalid_request', 'Only the S256 code_challenge_method is supported.');
  }
  const hidden = ['client_id', 'state', 'scope', 'code_challenge', 'code_challenge_method']
    .map((k) => `<input type="hidden" name="${k}" value="${esc(q.get(k) ?? '')}">`).join('');
  return html(res, 200, 'Authorize application', `
<h1>Sign in (GitHub stand-in)</h1>
<p>to continue to <strong>${esc(client.client_id)}</strong> (scopes: <span id="scopes">${esc(q.get('scope') || '(none)')}</span>)</p>
<form method="post" action="/login/oauth/authorize">
  ${hidden}
  <input type="hidden" name="redirect_uri" value="${esc(redirectUri)}">
  <label>Username <input id="login" name="login" type="text" autofocus required></label>
  <button id="authorize" type="submit">Authorize</button>
</form>`);
}

async function authorizePost(req, res) {
  const f = await readForm(req);
  const client = clients.get(f.get('client_id'));
  const redirectUri = f.get('redirect_uri');
  if (!client || !redirectUri || !redirectAllowed(client, redirectUri)) {
    return html(res, 400, 'Error', '<h1 id="error">Invalid authorization request</h1>');
  }
  const login = (f.get('login') || '').trim();
  if (!login) return authorizeError(res, redirectUri, f.get('state'), 'access_denied', 'The user has denied your application access.');
  const code = crypto.randomBytes(10).toString('hex');
  codes.set(code, {
    clientId: client.client_id,
    redirectUri,
    login,
    scope: (f.get('scope') || '').split(/[\s,]+/).filter(Boolean),
    challenge: f.get('code_challenge') || undefined,
    expires: Date.now() + 10 * 60 * 1000,
  });
  const u = new URL(redirectUri);
  u.searchParams.set('code', code);
  if (f.get('state')) u.searchParams.set('state', f.get('state'));
  return redirect(res, u.href);
}

async function accessToken(req, res) {
  const f = await readForm(req);
  const wantsJson = /application\/json/i.test(req.headers.accept || '');
  const reply = (body) => {
    if (wantsJson) return json(res, 200, body);
    res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
    return res.end(new URLSearchParams(body).toString());
  };
  const fail = (error, description, anchor) => reply({
    error,
    error_description: description,
    error_uri: `/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#${anchor}`,
  });

  let clientId = f.get('client_id');
  let clientSecret = f.get('client_secret');
  const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization || '');
  if (basic) {
    const [id, ...secret] = Buffer.from(basic[1], 'base64').toString('utf8').split(':');
    clientId = clientId || decodeURIComponent(id);
    clientSecret = clientSecret || decodeURIComponent(secret.join(':'));
  }
  const client = clients.get(clientId);
  if (!client || client.client_secret !== clientSecret) {
    return fail('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.', 'incorrect-client-credentials');
  }
  const code = f.get('code');
  const entry = code && codes.get(code);
  if (code) codes.delete(code); // single use, whatever happens next
  if (!entry || entry.clientId !== client.client_id || entry.expires < Date.now()) {
    return fail('bad_verification_code', 'The code passed is incorrect or expired.', 'bad-verification-code');
  }
  const redirectUri = f.get('redirect_uri');
  if (redirectUri && redirectUri !== entry.redirectUri) {
    return fail('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.', 'redirect-uri-mismatch');
  }
  if (entry.challenge) {
    const verifier = f.get('code_verifier');
    if (!verifier || s256(verifier) !== entry.challenge) {
      return fail('bad_verification_code', 'The code_verifier does not match the code_challenge.', 'bad-verification-code');
    }
  }
  const token = `gho_${crypto.randomBytes(18).toString('base64url')}`;
  tokens.set(token, { login: entry.login, scope: entry.scope, clientId: client.client_id });
  return reply({ access_token: token, token_type: 'bearer', scope: entry.scope.join(',') });
}

// ---------------------------------------------------------------------------
// REST API
// ---------------------------------------------------------------------------
const DOCS = 'https://docs.github.com/rest';

function rateHeaders(remaining, reset) {
  return {
    'x-ratelimit-limit': '5000',
    'x-ratelimit-remaining': String(remaining),
    'x-ratelimit-used': String(5000 - remaining),
    'x-ratelimit-reset': String(reset),
    'x-ratelimit-resource': 'core',
    'x-github-media-type': 'github.v3; format=json',
  };
}

/** Applies per_page/page and sets GitHub's Link header. */
function paginate(res, apiBase, url, items, extraHeaders) {
  let perPage = parseInt(url.searchParams.get('per_page') || '30', 10);
  if (!Number.isFinite(perPage) || perPage < 1) perPage = 30;
  perPage = Math.min(perPage, 100);
  let pageNo = parseInt(url.searchParams.get('page') || '1', 10);
  if (!Number.isFinite(pageNo) || pageNo < 1) pageNo = 1;
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (p) => {
    const u = new URL(`${apiBase}${url.pathname.replace(/^\/api\/v3/, '')}`);
    for (const [k, v] of url.searchParams) if (k !== 'page' && k !== 'per_page') u.searchParams.append(k, v);
    u.searchParams.set('per_page', String(perPage));
    u.searchParams.set('page', String(p));
    return u.href;
  };
  const rels = [];
  if (pageNo > 1) rels.push(`<${link(pageNo - 1)}>; rel="prev"`);
  if (pageNo < last) rels.push(`<${link(pageNo + 1)}>; rel="next"`, `<${link(last)}>; rel="last"`);
  if (pageNo > 1) rels.push(`<${link(1)}>; rel="first"`);
  const headers = { ...extraHeaders };
  if (rels.length) headers.link = rels.join(', ');
  return json(res, 200, items.slice((pageNo - 1) * perPage, pageNo * perPage), headers);
}

function orgJson(apiBase, o) {
  return {
    login: o.login,
    id: o.id,
    node_id: Buffer.from(`Organization${o.id}`).toString('base64'),
    url: `${apiBase}/orgs/${o.login}`,
    repos_url: `${apiBase}/orgs/${o.login}/repos`,
    members_url: `${apiBase}/orgs/${o.login}/members{/member}`,
    avatar_url: `${apiBase}/avatars/${o.login}`,
    description: o.description,
  };
}

function api(req, res, url, base) {
  const apiBase = url.pathname.startsWith('/api/v3/') ? `${base}/api/v3` : base;
  const path = url.pathname.replace(/^\/api\/v3/, '');
  const reset = Math.floor(Date.now() / 1000) + 3600;
  const m = /^(?:bearer|token)\s+(\S+)$/i.exec(req.headers.authorization || '');
  const session = m && tokens.get(m[1]);
  if (!session) {
    return json(res, 401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' }, rateHeaders(59, reset));
  }
  const user = userFor(session.login);
  if (user.rateLimited) {
    return json(res, 403, {
      message: `API rate limit exceeded for user ID ${user.id}. If you reach out to GitHub Support for help, please include the request ID ${crypto.randomUUID()}.`,
      documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
      status: '403',
    }, rateHeaders(0, reset));
  }
  const scopes = new Set(session.scope);
  const headers = {
    ...rateHeaders(4999, reset),
    'x-oauth-scopes': session.scope.join(', '),
  };
  const has = (...any) => any.some((s) => scopes.has(s));
  const notFound = () => json(res, 404, { message: 'Not Found', documentation_url: DOCS, status: '404' }, headers);

  if (req.method !== 'GET') return notFound();
  switch (path) {
    case '/user':
      return json(res, 200, {
        login: user.login,
        id: user.id,
        node_id: Buffer.from(`User${user.id}`).toString('base64'),
        avatar_url: `${apiBase}/avatars/${user.login}`,
        url: `${apiBase}/users/${user.login}`,
        html_url: `${base}/${user.login}`,
        type: 'User',
        site_admin: false,
        name: user.name,
        company: null,
        email: user.email,
      }, headers);
    case '/user/emails':
      if (!has('user:email', 'user')) return notFound();
      return paginate(res, apiBase, url, user.emails, headers);
    case '/user/orgs': {
      const visible = has('read:org', 'write:org', 'admin:org', 'user') ? user.orgs : [];
      return paginate(res, apiBase, url, visible.map((o) => orgJson(apiBase, org(o))), headers);
    }
    case '/user/teams': {
      if (!has('read:org', 'write:org', 'admin:org', 'user', 'repo')) {
        return json(res, 403, { message: 'Resource not accessible by integration', documentation_url: DOCS, status: '403' }, headers);
      }
      const teams = user.teams.map(([o, slug, name], i) => ({
        id: org(o).id * 100 + i,
        node_id: Buffer.from(`Team${org(o).id}-${slug}`).toString('base64'),
        url: `${apiBase}/orgs/${o}/teams/${slug}`,
        name,
        slug,
        description: null,
        privacy: 'closed',
        permission: 'pull',
        organization: { ...orgJson(apiBase, org(o)), name: o },
      }));
      return paginate(res, apiBase, url, teams, headers);
    }
    default:
      return notFound();
  }
}

// ---------------------------------------------------------------------------
// Server and lifetime
// ---------------------------------------------------------------------------
const server = http.createServer((req, res) => {
  const base = `http://127.0.0.1:${server.address().port}`;
  const url = new URL(req.url, base);
  Promise.resolve().then(() => {
    if (url.pathname === '/login/oauth/authorize') {
      return req.method === 'POST' ? authorizePost(req, res) : authorizeGet(req, res, url);
    }
    if (url.pathname === '/login/oauth/access_token' && req.method === 'POST') return accessToken(req, res);
    if (url.pathname.startsWith('/user') || url.pathname.startsWith('/api/v3/')) return api(req, res, url, base);
    return json(res, 404, { message: 'Not Found', documentation_url: DOCS, status: '404' });
  }).catch((err) => {
    console.error('github-api request error:', err);
    if (!res.headersSent) json(res, 500, { message: 'Server Error' });
    else res.destroy();
  });
});
server.keepAliveTimeout = 1000;

// Lifetime: SIGTERM/SIGINT, and end of stdin when it is a pipe (set up before listening).
function shutdown(code = 0) {
  server.close();
  server.closeAllConnections?.();
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
try {
  const st = fs.fstatSync(0);
  if (st.isFIFO() || st.isSocket()) {
    process.stdin.on('end', () => shutdown(0));
    process.stdin.on('close', () => shutdown(0));
    process.stdin.on('error', () => shutdown(0));
    process.stdin.resume();
  }
} catch {
  // no stdin at all
}

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const { port } = server.address();

process.stdout.write(`READY ${JSON.stringify({ base: `http://127.0.0.1:${port}`, port })}\n`);
