//! `rd` validation (`/oauth2/start?rd=…` and sign-out): a same-host path, an absolute URL on an
//! allowed host, and a hostile absolute URL that must fall back to `/`.

use authgate::host::Host;
use authgate::redirect::{RedirectPolicy, FALLBACK};

use crate::runner::Runner;

pub(crate) fn bench(r: &mut Runner) {
    let hosts = vec![Host::parse("mcd.devlabai.work").expect("host")];
    let allowed = vec![Host::parse("docs.devlabai.work").expect("host")];
    let policy = RedirectPolicy {
        hosts: &hosts,
        allowed_hosts: &allowed,
        allow_http: false,
    };
    for (name, rd, accepted) in [
        ("path", "/helloworld?tab=2&q=a%20b", true),
        (
            "absolute_allowed",
            "https://docs.devlabai.work/guide?x=1",
            true,
        ),
        (
            "absolute_hostile",
            "https://mcd.devlabai.work.evil.example/x",
            false,
        ),
    ] {
        let got = policy.validate(Some(rd));
        assert_eq!(got == rd, accepted, "{rd}");
        assert_eq!(got == FALLBACK, !accepted, "{rd}");
        r.run("rd_validate", name, || policy.validate(Some(rd)));
    }
}
