// The app of scripts/demo: an HTML page showing the X-Auth-Request-* headers NGINX passed on
// after authgate's answer, i.e. what an app behind authgate learns about its user.
//
// Listens on 127.0.0.1 with an OS-picked port and prints one line on stdout:
//   READY {"port":PORT}
// No dependencies beyond Node.js itself; exits on SIGTERM/SIGINT.

import * as http from 'node:http';

const HEADERS = [
  'x-auth-request-user',
  'x-auth-request-email',
  'x-auth-request-preferred-username',
  'x-auth-request-groups',
];

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(req) {
  const host = req.headers.host || '';
  const email = req.headers['x-auth-request-email'];
  const user = req.headers['x-auth-request-user'];
  const who = email || user;
  const rows = HEADERS.map((h) => {
    const v = req.headers[h];
    const cell = v === undefined ? '<em>(not sent)</em>' : `<code>${esc(v)}</code>`;
    return `<tr><th>${esc(h)}</th><td>${cell}</td></tr>`;
  }).join('\n');
  const heading = who
    ? `Signed in as <span id="who">${esc(who)}</span>`
    : 'No login here: authgate let the request through without an identity';
  const signOut = who ? '<p><a href="/oauth2/sign_out">Sign out</a></p>' : '';
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>authgate demo: ${esc(host)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; color: #222; }
table { border-collapse: collapse; } th, td { text-align: left; padding: .3rem .8rem; border-bottom: 1px solid #ddd; }
th { font-weight: 600; } code { font-size: 1rem; } .muted { color: #666; }
</style></head>
<body>
<h1>${heading}</h1>
<p class="muted">The app behind NGINX at <code>${esc(host)}</code>, path <code>${esc(req.url)}</code>.
These are the identity headers it received; NGINX replaced whatever the browser sent with
authgate's answer.</p>
<table>
${rows}
</table>
${signOut}
</body></html>
`;
}

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(page(req));
});
const stop = () => {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${JSON.stringify({ port: server.address().port })}\n`);
});
