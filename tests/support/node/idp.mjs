// A real OpenID Provider (npm `oidc-provider` v9) for authgate's integration tests.
//
// Usage:
//   IDP_CONFIG='{"shape":"generic","clients":[{"client_id":"c","client_secret":"s","redirect_uris":["http://127.0.0.1:9/cb"]}]}' node idp.mjs
//
// IDP_CONFIG fields:
//   shape    "generic" | "azure" | "keycloak"            (default "generic")
//   clients  array of client metadata; client_id, client_secret, redirect_uris are
//            the usual ones, any other oidc-provider client metadata is passed through
//            (post_logout_redirect_uris, grant_types, token_endpoint_auth_method, ...).
//            Both client_secret_basic and client_secret_post are accepted.
//   tenant   azure only: tenant id (uuid), default 72f988bf-86f1-41af-91ab-2d7cd011db47
//            (the issuer names it: a single-tenant app). The same provider also answers as a
//            multi-tenant app: discovery under /organizations/v2.0 or /common/v2.0 gives the
//            issuer template http://127.0.0.1:PORT/{tenantid}/v2.0, as Entra's does; tokens
//            still carry iss .../<tenant>/v2.0 and tid <tenant>.
//   realm    keycloak only: realm name, default "test"
//   backchannel_logout  true: enable Back-Channel Logout 1.0 (register a client's
//            backchannel_logout_uri and backchannel_logout_session_required in `clients`).
//            Logout tokens are then posted to 127.0.0.1 on the URI's port, with the URI's
//            host in the Host header (so http://ws.localhost:PORT/... works without DNS),
//            and oidc-provider's refusal of loopback addresses (SSRF protection) is lifted:
//            a test IdP talking to the test's authgate only.
//   client_credentials  true: every client may also use the client_credentials grant (a
//            machine's token, no user); with the keycloak shape its access token is an RS256
//            JWT with aud = the client id, as Keycloak's service accounts get.
//
// Startup protocol: listens on 127.0.0.1 with an OS-picked port, then builds the
// provider with an issuer containing that port and prints exactly one line on stdout:
//   READY {"issuer":"http://127.0.0.1:PORT/...","port":PORT}
// Everything else (oidc-provider notices, request errors) goes to stderr.
// It exits on SIGTERM/SIGINT, and when stdin is a pipe that closes (the parent died).
//
// Shapes:
//   generic   issuer http://127.0.0.1:PORT, oidc-provider's default endpoint paths.
//   azure     issuer http://127.0.0.1:PORT/<tenant>/v2.0 (Entra ID v2 shape). Endpoints
//             follow Entra's layout: /<tenant>/oauth2/v2.0/{authorize,token,logout},
//             /<tenant>/discovery/v2.0/keys; discovery at <issuer>/.well-known/openid-configuration.
//             The callback carries no `iss` parameter and discovery does not advertise
//             authorization_response_iss_parameter_supported (Entra sends neither).
//             A Microsoft Graph stand-in answers GET /v1.0/me/memberOf (two pages).
//   keycloak  issuer http://127.0.0.1:PORT/realms/<realm>, Keycloak's endpoint paths
//             (/protocol/openid-connect/{auth,token,certs,userinfo,logout,...}).
//             Access tokens are RS256 JWTs (aud = client id) carrying realm_access,
//             resource_access, groups, preferred_username, email.
//
// In every shape: devInteractions login form (any password), automatic consent,
// PKCE S256 required, scope claims in the ID token (conformIdTokenClaims: false),
// RS256 + ES256 signing keys generated at start, RP-initiated logout, cookies named
// idp_session / idp_interaction / idp_interaction_resume / idp_state.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import Provider from 'oidc-provider';

// oidc-provider prints runtime notices with console.info; stdout is reserved for READY.
console.info = console.error;
console.log = console.error;

// ---------------------------------------------------------------------------
// Account table. The account id (`sub`) is the login typed at the login form;
// any login is accepted with any password. Logins not listed get the defaults.
//
// login        email                     email_verified* groups (generic)      azure roles              keycloak realm / client roles
// alice        alice@example.test        true            g-admins, g-staff     App.Admin, App.Reader    admin, user / editor
// bob          bob@example.test          true            g-staff               App.Reader               user / (none)
// noemail      (no email claim)          (absent)        -                     -                        - / -
// unverified   unverified@example.test   false           -                     -                        - / -
// unattested   unattested@example.test   (absent)        -                     -                        - / -
// overage      overage@example.test      true            g-admins, g-staff,    App.Reader               - / -
//                                                         g-auditors (azure: via Graph only)
// many         many@example.test         true            200 uuids (groupIds)  -                        - / -
// <other>      <login>@example.test      true            -                     -                        - / -
//
// * azure never sends email_verified (Entra has no such claim); preferred_username
//   there is the UPN <login>@example.test, even for noemail. Entra's optional claim
//   xms_edov (the email domain's owner verified the address) is sent for alice as
//   true and for bob as the string "1"; every other azure account has none.
// Group names per shape:
//   generic   ["g-admins","g-staff"] (claim always present, [] when none)
//   keycloak  ["/g-admins","/g-staff"] group paths (claim always present, [] when none)
//   azure     object ids (claim omitted when none, as Entra does):
//               g-admins    6a5c8f2e-1d3b-4c7a-9e0f-a1b2c3d4e501
//               g-staff     7b6d9a3f-2e4c-4d8b-8f1a-b2c3d4e5f602
//               g-auditors  8c7e0b4a-3f5d-4e9c-9a2b-c3d4e5f6a703
//             `overage` gets no `groups` claim but Entra's overage indication:
//               _claim_names {"groups":"src1"},
//               _claim_sources {"src1":{"endpoint":"http://127.0.0.1:PORT/v1.0/me/memberOf"}},
//               hasgroups true
//             and Graph lists for it: page 1 = directoryRole "Global Reader" + g-admins,
//             page 2 = g-staff + g-auditors.
//   azure `oid` is a stable uuid derived from the login (see oidFor()); `tid` = tenant:
//               alice       3151a86d-f4f1-464c-a8e6-697f92f4d3a8
//               bob         1e8477ba-edfc-49cc-a4f5-45cca904348d
//               noemail     b939ee84-a166-497e-a280-f0357e6fccb2
//               unverified  4d22e8ea-8ca9-4e36-a5e8-4b9043f40b1b
//               overage     09adfaa1-2a18-4b4a-a90e-79a0881840a1
// ---------------------------------------------------------------------------
const ACCOUNTS = {
  alice: {
    name: 'Alice Admin',
    groups: ['g-admins', 'g-staff'],
    azureRoles: ['App.Admin', 'App.Reader'],
    realmRoles: ['admin', 'user'],
    clientRoles: ['editor'],
    xmsEdov: true,
  },
  bob: {
    name: 'Bob Staff',
    groups: ['g-staff'],
    azureRoles: ['App.Reader'],
    realmRoles: ['user'],
    clientRoles: [],
    xmsEdov: '1',
  },
  noemail: { name: 'No Email', noEmail: true },
  unverified: { name: 'Unverified Email', emailVerified: false },
  unattested: { name: 'Unattested Email', emailVerified: null },
  // A member of a large Entra tenant's many groups: 200 object ids (36 characters each),
  // as the `groups` claim in every shape. 200 is the most Entra puts in a JWT before it sends
  // the overage indication instead.
  many: {
    name: 'Many Groups',
    groups: Array.from({ length: 200 }, (_, i) => oidFor(`group-${i}`)),
  },
  overage: {
    name: 'Overage User',
    groups: ['g-admins', 'g-staff', 'g-auditors'],
    azureRoles: ['App.Reader'],
    overage: true,
  },
};

const AZURE_GROUP_IDS = {
  'g-admins': '6a5c8f2e-1d3b-4c7a-9e0f-a1b2c3d4e501',
  'g-staff': '7b6d9a3f-2e4c-4d8b-8f1a-b2c3d4e5f602',
  'g-auditors': '8c7e0b4a-3f5d-4e9c-9a2b-c3d4e5f6a703',
};

/** A directory role that Graph's memberOf lists next to groups (not a group). */
const AZURE_DIRECTORY_ROLE = {
  '@odata.type': '#microsoft.graph.directoryRole',
  id: '9d8f1c5b-4a6e-4f0d-8b3c-d4e5f6a7b804',
  displayName: 'Global Reader',
};

/** Stable uuid for an account's Entra object id. */
function oidFor(login) {
  const h = crypto.createHash('sha256').update(`oid:${login}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function accountInfo(login) {
  const a = ACCOUNTS[login] || {};
  return {
    login,
    name: a.name || login,
    email: a.noEmail ? undefined : `${login}@example.test`,
    // null: the claim is left out (an IdP that never sends it).
    emailVerified: a.noEmail || a.emailVerified === null ? undefined : a.emailVerified !== false,
    xmsEdov: a.xmsEdov,
    groups: a.groups || [],
    azureRoles: a.azureRoles || [],
    realmRoles: a.realmRoles || [],
    clientRoles: a.clientRoles || [],
    overage: !!a.overage,
  };
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------
let config;
try {
  config = JSON.parse(process.env.IDP_CONFIG || '{}');
} catch (err) {
  console.error(`idp: IDP_CONFIG is not valid JSON: ${err.message}`);
  process.exit(2);
}
const shape = config.shape || 'generic';
if (!['generic', 'azure', 'keycloak'].includes(shape)) {
  console.error(`idp: unknown shape ${JSON.stringify(shape)}`);
  process.exit(2);
}
const tenant = config.tenant || '72f988bf-86f1-41af-91ab-2d7cd011db47';
const realm = config.realm || 'test';
const clients = (config.clients || []).map((c) => ({
  grant_types: ['authorization_code', 'refresh_token'].concat(
    config.client_credentials ? ['client_credentials'] : [],
  ),
  response_types: ['code'],
  ...c,
}));

/** Resource indicator that makes keycloak-shape access tokens JWTs. */
const KEYCLOAK_RESOURCE = `urn:authgate-test:keycloak:${realm}`;

// Signing keys: RS256 first (the default ID token alg), ES256 second.
function makeJwk(type, opts, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, opts);
  const jwk = privateKey.export({ format: 'jwk' });
  jwk.kid = `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}`;
  jwk.alg = alg;
  jwk.use = 'sig';
  return jwk;
}
const jwks = {
  keys: [
    makeJwk('rsa', { modulusLength: 2048 }, 'RS256'),
    makeJwk('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};
const publicKeys = new Map(jwks.keys.map((k) => [k.kid, crypto.createPublicKey({ key: k, format: 'jwk' })]));

/** Verifies a JWT signed by this provider; returns its payload or undefined. */
function verifyOwnJwt(token, issuer) {
  try {
    const [h, p, s] = token.split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url'));
    const key = publicKeys.get(header.kid);
    if (!key) return undefined;
    const data = Buffer.from(`${h}.${p}`);
    const sig = Buffer.from(s, 'base64url');
    const ok = header.alg === 'RS256'
      ? crypto.verify('sha256', data, key, sig)
      : header.alg === 'ES256' && crypto.verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
    if (!ok) return undefined;
    const payload = JSON.parse(Buffer.from(p, 'base64url'));
    if (payload.iss !== issuer) return undefined;
    if (typeof payload.exp !== 'number' || payload.exp * 1000 < Date.now()) return undefined;
    return payload;
  } catch {
    return undefined;
  }
}

/** Claims per scope, by shape. */
function claimsConfig() {
  const base = {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'given_name', 'family_name'],
    groups: ['groups'],
  };
  if (shape === 'azure') {
    // Entra puts tid/oid/roles and the groups optional claim in every ID token.
    base.openid.push('tid', 'oid', 'roles', 'groups', 'hasgroups', 'xms_edov');
  } else {
    // Released with `profile` too, so tests need not remember the `groups` scope.
    base.profile.push('groups');
  }
  return base;
}

/** All claims an account can have; oidc-provider filters them by granted scope. */
function accountClaims(login, issuerOrigin) {
  const a = accountInfo(login);
  const [given, ...rest] = a.name.split(' ');
  const claims = {
    sub: login,
    name: a.name,
    given_name: given,
    family_name: rest.join(' ') || undefined,
    preferred_username: a.login,
    email: a.email,
    email_verified: a.emailVerified,
  };
  if (shape === 'azure') {
    // Entra: preferred_username is the UPN; there is no email_verified claim.
    claims.preferred_username = `${login}@example.test`;
    delete claims.email_verified;
    claims.tid = tenant;
    claims.oid = oidFor(login);
    if (a.xmsEdov !== undefined) claims.xms_edov = a.xmsEdov;
    if (a.azureRoles.length) claims.roles = a.azureRoles;
    if (a.overage) {
      claims.hasgroups = true;
      claims._claim_names = { groups: 'src1' };
      claims._claim_sources = { src1: { endpoint: `${issuerOrigin}/v1.0/me/memberOf` } };
    } else if (a.groups.length) {
      // Named groups map to their object ids; `many`'s are object ids already.
      claims.groups = a.groups.map((g) => AZURE_GROUP_IDS[g] ?? g);
    }
  } else if (shape === 'keycloak') {
    claims.groups = a.groups.map((g) => `/${g}`);
  } else {
    claims.groups = a.groups;
  }
  return claims;
}

/** Keycloak's access-token-only claims. */
function keycloakAccessTokenClaims(login, clientId) {
  const a = accountInfo(login);
  const out = {
    typ: 'Bearer',
    azp: clientId,
    realm_access: { roles: a.realmRoles },
    preferred_username: a.login,
    name: a.name,
    email: a.email,
    email_verified: a.emailVerified,
    groups: a.groups.map((g) => `/${g}`),
  };
  // Keycloak leaves a client out of resource_access when the user has no role in it.
  if (a.clientRoles.length) out.resource_access = { [clientId]: { roles: a.clientRoles } };
  return out;
}

// ---------------------------------------------------------------------------
// HTTP server: listen first, then build the provider with the real issuer.
// ---------------------------------------------------------------------------
let handle = (req, res) => {
  res.statusCode = 503;
  res.end('starting');
};
const server = http.createServer((req, res) => handle(req, res));
server.keepAliveTimeout = 1000;

// Lifetime: SIGTERM/SIGINT, and end of stdin when it is a pipe (set up before listening).
function shutdown(code = 0) {
  server.close();
  server.closeAllConnections?.();
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
// Exit when the parent goes away, but only if stdin is a pipe/socket: with
// stdin at /dev/null or a terminal, end-of-input means nothing.
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
const origin = `http://127.0.0.1:${port}`;

let issuer;
let mountPath; // where provider.callback() is mounted
let routes;
if (shape === 'azure') {
  issuer = `${origin}/${tenant}/v2.0`;
  mountPath = `/${tenant}`;
  routes = {
    authorization: '/oauth2/v2.0/authorize',
    token: '/oauth2/v2.0/token',
    end_session: '/oauth2/v2.0/logout',
    jwks: '/discovery/v2.0/keys',
    userinfo: '/oidc/userinfo',
    revocation: '/oauth2/v2.0/revoke',
    introspection: '/oauth2/v2.0/introspect',
  };
} else if (shape === 'keycloak') {
  issuer = `${origin}/realms/${realm}`;
  mountPath = `/realms/${realm}`;
  routes = {
    authorization: '/protocol/openid-connect/auth',
    token: '/protocol/openid-connect/token',
    end_session: '/protocol/openid-connect/logout',
    jwks: '/protocol/openid-connect/certs',
    userinfo: '/protocol/openid-connect/userinfo',
    revocation: '/protocol/openid-connect/revoke',
    introspection: '/protocol/openid-connect/token/introspect',
    pushed_authorization_request: '/protocol/openid-connect/ext/par/request',
  };
} else {
  issuer = origin;
  mountPath = '';
  routes = undefined;
}

/** oidc-provider's outbound fetch for back-channel logout: straight to 127.0.0.1 on the
 * URL's port, the URL's host kept in the Host header. */
function loopbackFetch(url, options = {}) {
  const u = new URL(url);
  const headers = Object.fromEntries(new Headers(options.headers));
  headers.host = u.host;
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: u.port || 80,
      path: `${u.pathname}${u.search}`,
      method: options.method || 'GET',
      headers,
      signal: options.signal,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = [204, 304].includes(res.statusCode) ? null : Buffer.concat(chunks);
        resolve(new Response(body, { status: res.statusCode }));
      });
    });
    req.on('error', reject);
    req.end(options.body === undefined ? undefined : String(options.body));
  });
}

const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const provider = new Provider(issuer, {
  clients,
  jwks,
  routes,
  claims: claimsConfig(),
  conformIdTokenClaims: false,
  ...(config.backchannel_logout ? { fetch: loopbackFetch } : {}),
  pkce: { required: () => true },
  // Every code grant of a client allowed the refresh_token grant gets a refresh token (not only
  // offline_access ones): what Entra and Keycloak do for their default scopes.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // IDP_CONFIG {"rotate_refresh_tokens": true}: each refresh spends its refresh token (and a
  // spent one presented again revokes the grant), as Entra's SPA tokens and Keycloak's
  // "revoke refresh token" setting do.
  rotateRefreshToken: () => !!config.rotate_refresh_tokens,
  cookies: {
    keys: [crypto.randomBytes(32).toString('hex')],
    names: {
      session: 'idp_session',
      interaction: 'idp_interaction',
      resume: 'idp_interaction_resume',
      state: 'idp_state',
    },
  },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: !!config.backchannel_logout },
    clientCredentials: { enabled: !!config.client_credentials },
    pushedAuthorizationRequests: { enabled: shape !== 'azure' },
    revocation: { enabled: true },
    introspection: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource(ctx, form) {
        ctx.body = page('Sign out', `<h1>Sign out of ${esc(ctx.host)}?</h1>${form}
<button id="logout-yes" type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button id="logout-no" type="submit" form="op.logoutForm">No, stay signed in</button>`);
      },
      postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<h1>Signed out</h1><p>Your sign-out was successful.</p>');
      },
    },
    resourceIndicators: {
      enabled: shape === 'keycloak',
      defaultResource: async (ctx, client, oneOf) => {
        if (oneOf) return oneOf.includes(KEYCLOAK_RESOURCE) ? KEYCLOAK_RESOURCE : oneOf[0];
        return KEYCLOAK_RESOURCE;
      },
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator, client) => {
        if (resourceIndicator !== KEYCLOAK_RESOURCE) throw new Provider.errors.InvalidTarget();
        return {
          scope: 'openid email profile groups offline_access',
          audience: client.clientId,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  async extraTokenClaims(ctx, token) {
    if (shape === 'keycloak' && token.kind === 'AccessToken' && token.accountId) {
      return keycloakAccessTokenClaims(token.accountId, token.clientId);
    }
    return undefined;
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return accountClaims(id, origin);
      },
    };
  },
  // Automatic consent: grant whatever this request asks for.
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (!grant) {
      grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
    }
    grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
    if (oidc.requestParamClaims.size) grant.addOIDCClaims([...oidc.requestParamClaims]);
    for (const [indicator, rs] of Object.entries(oidc.resourceServers || {})) {
      const scopes = [...oidc.requestParamScopes].filter((s) => rs.scopes.has(s));
      if (scopes.length) grant.addResourceScope(indicator, scopes.join(' '));
    }
    await grant.save();
    return grant;
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>Error</h1><p id="error">${esc(out.error)}</p><p id="error_description">${esc(out.error_description)}</p>`);
  },
});

if (shape === 'azure') {
  // Entra sends no `iss` on the authorization response and does not advertise it.
  // oidc-provider has no option for this, so the value is dropped here: the
  // 'authorization.success' event gets the response parameters before they are sent.
  provider.on('authorization.success', (_ctx, out) => {
    delete out.iss;
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'discovery' && ctx.body) {
      delete ctx.body.authorization_response_iss_parameter_supported;
      // A multi-tenant app's discovery names the issuer as a template.
      if (ctx.req.tenantTemplate) ctx.body.issuer = issuer.replace(`/${tenant}/`, '/{tenantid}/');
    }
  });
}

provider.on('server_error', (_ctx, err) => console.error('idp server_error:', err));

// ---------------------------------------------------------------------------
// Test controls, under /test/ (loopback only, like everything here):
//   GET  /test/stats                          {"refresh_grants": n, "refresh_errors": n,
//                                              "refresh_tokens": [every one issued]}
//   POST /test/accounts/<login>/groups?set=a,b  the account's groups become a, b
//   POST /test/accounts/<login>/realm_roles?set=a  its Keycloak realm roles become a
//   POST /test/accounts/<login>/revoke        ends every grant of the account (as an admin
//                                             revoking the user's sessions at the IdP)
//   POST /test/token/hold                     token endpoint requests wait (counted in
//                                             stats.token_waiting) until
//   POST /test/token/release                  lets them (and later ones) through
// ---------------------------------------------------------------------------
const stats = { refresh_grants: 0, refresh_errors: 0, refresh_tokens: [], token_waiting: 0 };
let tokenHold = null; // { promise, release } while the token endpoint is held

/** Resolves once the token endpoint is not held (at once when it is not). */
function tokenEndpointOpen() {
  if (!tokenHold) return Promise.resolve();
  stats.token_waiting += 1;
  return tokenHold.promise.then(() => { stats.token_waiting -= 1; });
}
const grantsOf = new Map();
provider.on('grant.success', (ctx) => {
  if (ctx.oidc.params.grant_type === 'refresh_token') stats.refresh_grants += 1;
});
provider.on('grant.error', (ctx) => {
  if (ctx.oidc?.params?.grant_type === 'refresh_token') stats.refresh_errors += 1;
});
provider.on('refresh_token.saved', (token) => {
  stats.refresh_tokens.push(token.jti); // an opaque token's value is its jti
  if (!grantsOf.has(token.accountId)) grantsOf.set(token.accountId, new Set());
  grantsOf.get(token.accountId).add(token.grantId);
});

async function testControl(req, res, url) {
  const path = url.pathname;
  if (req.method === 'GET' && path === '/test/stats') return sendJson(res, 200, stats);
  if (req.method === 'POST' && path === '/test/token/hold') {
    if (!tokenHold) {
      let release;
      const promise = new Promise((resolve) => { release = resolve; });
      tokenHold = { promise, release };
    }
    return sendJson(res, 200, { held: true });
  }
  if (req.method === 'POST' && path === '/test/token/release') {
    if (tokenHold) tokenHold.release();
    tokenHold = null;
    return sendJson(res, 200, { held: false });
  }
  const m = /^\/test\/accounts\/([a-z]+)\/(groups|realm_roles|revoke)$/.exec(path);
  if (req.method !== 'POST' || !m || !ACCOUNTS[m[1]]) return sendJson(res, 404, { error: 'not_found', path });
  const [, login, what] = m;
  if (what !== 'revoke') {
    const set = url.searchParams.get('set') || '';
    const field = what === 'groups' ? 'groups' : 'realmRoles';
    ACCOUNTS[login][field] = set ? set.split(',') : [];
    return sendJson(res, 200, { login, [field]: ACCOUNTS[login][field] });
  }
  let revoked = 0;
  for (const id of grantsOf.get(login) || []) {
    const grant = await provider.Grant.find(id);
    if (grant) {
      await grant.destroy();
      revoked += 1;
    }
  }
  grantsOf.delete(login);
  return sendJson(res, 200, { login, revoked });
}

const callback = provider.callback();

/** Runs the provider as if mounted at `mount` (what Express's app.use(mount, ...) does). */
function mounted(req, res, mount, innerUrl) {
  req.originalUrl = req.url;
  req.baseUrl = mount;
  req.url = innerUrl || '/';
  return callback(req, res);
}

function sendJson(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

function bearer(req) {
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization || '');
  return m ? m[1].trim() : undefined;
}

/** Microsoft Graph stand-in: GET /v1.0/me/memberOf, two pages. */
async function graphMemberOf(req, res, url) {
  const graphError = (code, message) => sendJson(res, 401, { error: { code, message } }, {
    'www-authenticate': 'Bearer realm=""',
  });
  const token = bearer(req);
  if (!token) return graphError('InvalidAuthenticationToken', 'Access token is empty.');
  const at = await provider.AccessToken.find(token);
  if (!at || !at.accountId) return graphError('InvalidAuthenticationToken', 'Access token validation failure.');
  const a = accountInfo(at.accountId);
  const objects = a.groups.map((g) => ({
    '@odata.type': '#microsoft.graph.group',
    id: AZURE_GROUP_IDS[g],
    displayName: g,
    securityEnabled: true,
  }));
  if (a.overage) objects.unshift(AZURE_DIRECTORY_ROLE);
  const half = Math.ceil(objects.length / 2);
  const second = url.searchParams.get('$skiptoken') === 'page2';
  const body = {
    '@odata.context': `${origin}/v1.0/$metadata#directoryObjects`,
    value: second ? objects.slice(half) : objects.slice(0, half),
  };
  if (!second) {
    const next = new URL(url.pathname, origin);
    for (const [k, v] of url.searchParams) if (k !== '$skiptoken') next.searchParams.append(k, v);
    next.searchParams.set('$skiptoken', 'page2');
    body['@odata.nextLink'] = next.href.replace('%24skiptoken', '$skiptoken');
  }
  return sendJson(res, 200, body);
}

/** Keycloak's userinfo accepts its JWT access tokens; oidc-provider's does not
 * accept resource-bound tokens, so keycloak-shape userinfo is answered here. */
async function keycloakUserinfo(req, res) {
  const token = bearer(req);
  const payload = token && verifyOwnJwt(token, issuer);
  if (!payload) {
    return sendJson(res, 401, { error: 'invalid_token', error_description: 'Token verification failed' }, {
      'www-authenticate': 'Bearer error="invalid_token"',
    });
  }
  const all = accountClaims(payload.sub, origin);
  const scopes = new Set(String(payload.scope || '').split(' '));
  const cfg = claimsConfig();
  const out = {};
  for (const s of scopes) for (const c of cfg[s] || []) if (all[c] !== undefined) out[c] = all[c];
  out.sub = payload.sub;
  return sendJson(res, 200, out);
}

handle = (req, res) => {
  const url = new URL(req.url, origin);
  const path = url.pathname;
  const held = req.method === 'POST' && path.endsWith('/token') ? tokenEndpointOpen() : Promise.resolve();
  held.then(() => {
    if (path.startsWith('/test/')) return testControl(req, res, url);
    if (shape === 'azure') {
      if (req.method === 'GET' && (path === '/v1.0/me/memberOf' || path === '/v1.0/me/transitiveMemberOf')) {
        return graphMemberOf(req, res, url);
      }
      // Discovery lives under the issuer (/<tenant>/v2.0), the rest under /<tenant>.
      const wellKnown = `${mountPath}/v2.0/.well-known/openid-configuration`;
      if (path === '/organizations/v2.0/.well-known/openid-configuration'
        || path === '/common/v2.0/.well-known/openid-configuration') {
        req.tenantTemplate = true;
        req.url = `${mountPath}/.well-known/openid-configuration${url.search}`;
        return mounted(req, res, mountPath, `/.well-known/openid-configuration${url.search}`);
      }
      if (path === wellKnown) {
        req.url = `${mountPath}/.well-known/openid-configuration${url.search}`;
        return mounted(req, res, mountPath, `/.well-known/openid-configuration${url.search}`);
      }
    }
    if (shape === 'keycloak' && path === `${mountPath}${routes.userinfo}` && bearer(req)?.split('.').length === 3) {
      return keycloakUserinfo(req, res);
    }
    if (mountPath) {
      if (path === mountPath || path.startsWith(`${mountPath}/`)) {
        return mounted(req, res, mountPath, req.url.slice(mountPath.length));
      }
      return sendJson(res, 404, { error: 'not_found', path });
    }
    return callback(req, res);
  }).catch((err) => {
    console.error('idp request error:', err);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
    else res.destroy();
  });
};

process.stdout.write(`READY ${JSON.stringify({ issuer, port })}\n`);
