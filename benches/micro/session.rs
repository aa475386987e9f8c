//! Session cookie: find it among the request's cookies, decrypt (AES-256-GCM), parse, check
//! workspace and expiry, then the workspace's authorization rules — what `/oauth2/auth` does for
//! a browser request, without HTTP around it.

use authgate::session::cookies_named;

use crate::fixture::{alice, now, Fixture};
use crate::runner::Runner;

pub(crate) fn bench(r: &mut Runner, fx: &Fixture) {
    let ws = fx.workspace();
    let header = fx.cookie_header.as_str();
    let value = fx.session_value.as_str();
    let now = now();

    let session = ws
        .session
        .open([value], now)
        .expect("the sealed session opens");
    assert_eq!(session.id, alice());
    ws.config
        .authz
        .check(&session.id)
        .expect("alice is allowed");

    r.run("session", "open", || ws.session.open([value], now));
    r.run("session", "decode_and_check", || {
        let values = cookies_named([header], ws.session.name());
        let s = ws.session.open(values, now).expect("opens");
        ws.config.authz.check(&s.id).map(|_| s.id)
    });
    r.run("session", "issue", || ws.session.issue(&alice(), now));
}
