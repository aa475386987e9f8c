#!/usr/bin/env python3
"""Checks that the kustomize tree in k8s/ is wired together the way the platform needs.

Schema validation (kubernetes-validate) says each object is well formed; this says the
objects agree with each other and with authgate's config:

- every app Ingress asks authgate (four annotations, exact values), with or without login,
  and no other Ingress does;
- the workspace is pinned by the manifests, never by the client's Host header: every app
  Ingress's auth-url is /oauth2/auth/<the workspace of its namespace>, and each workspace's
  /oauth2 Ingress rewrites to /oauth2/<action>/<that workspace> and serves only its hosts;
- the browser reaches only authgate's browser routes: each /oauth2 Ingress (ingress-nginx and
  Traefik) routes start, callback, sign_out, userinfo and backchannel_logout and nothing else,
  so /oauth2/auth (whose answer carries the identity and the tokens) is never authgate's
  from outside;
- every identity header a workspace's config makes authgate send is one NGINX overwrites
  (listed in auth-response-headers of every Ingress of that workspace);
- the hosts the Ingresses serve are exactly the hosts of config/workspaces/*.toml, each
  host in one workspace, served from that workspace's namespace, with /oauth2 routed to
  authgate on every one of them;
- every Service an Ingress names exists in its namespace with the port it names, and
  selects pods that expose the Service's target port;
- every image is pinned, multi-arch (tests/k8s/multiarch-images.txt), never an
  architecture-specific tag;
- every Deployment has probes, requests and limits, and a non-root, read-only,
  no-capabilities security context;
- cloudflared, ingress-nginx (the HelmChart) and authgate fit together (service names,
  forwarded headers, trusted proxies, secrets, config files, spreading, PDBs, policies);
- the Traefik variant (k8s/traefik/) is as closed: K3s's Traefik gets a ClusterIP Service and
  trusts X-Forwarded-* from the pod network only (its HelmChartConfig), admits only
  cloudflared, and its ForwardAuth passes authgate exactly the client headers it reads.

Usage: python3 tests/k8s/test_wiring.py [--kubectl PATH]
Renders k8s/ (and each directory that must apply alone) with `kubectl kustomize`, runs
every check, prints one line per check and a closing "N passed, M failed"; exit 1 on failure.
Needs Python 3.11+ (tomllib) and PyYAML.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import subprocess
import sys
import tomllib
import traceback
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CONFIG = ROOT / "config"

# Directories that must render (and so apply) on their own, with the namespace they own.
STANDALONE = {
    "ingress-nginx": "ingress-nginx",
    "cloudflare": "cloudflare",
    "authgate": "authgate",
    "spaces/public": "public",
    "spaces/mcd": "mcd",
    "spaces/perso": "perso",
}

# The platform's route table (docs/deploy-k3s.md): (host prefix, path) -> (namespace, service).
# A host prefix of "" is the apex domain.
ROUTES = {
    ("", "/landing"): ("public", "landing"),
    ("mcd", "/landing"): ("mcd", "landing"),
    ("mcd", "/gemini-rl"): ("mcd", "geminirealtime"),
    ("mcd", "/helloworld"): ("mcd", "helloworld"),
    ("perso", "/landing"): ("perso", "landing"),
    ("perso", "/gemini-rl"): ("perso", "geminirealtime"),
}

AUTHGATE_NS = "authgate"
# authgate's auth endpoint; an app Ingress appends its workspace: AUTH_URL + "/mcd".
AUTH_URL = "http://authgate.authgate.svc.cluster.local/oauth2/auth"
AUTH_SIGNIN = "https://$host/oauth2/start?rd=$escaped_request_uri"
# Every identity header authgate can send (src/http/auth.rs): NGINX overwrites only the listed
# ones, so all of them are listed in every workspace, login or not.
IDENTITY_HEADERS = ("X-Auth-Request-User", "X-Auth-Request-Email",
                    "X-Auth-Request-Preferred-Username", "X-Auth-Request-Groups",
                    "X-Auth-Request-Access-Token", "X-Auth-Request-Id-Token")
AUTH_HEADERS = ",".join(IDENTITY_HEADERS)
ANN = "nginx.ingress.kubernetes.io/"
# authgate's routes for the browser, the only ones the /oauth2 Ingresses route: never
# /oauth2/auth, whose answer carries the identity headers and, with [headers] pass_*, tokens.
OAUTH2_ACTIONS = ("start", "callback", "sign_out", "userinfo", "backchannel_logout")
# What each workspace's /oauth2 Ingress matches (ingress-nginx: a regex, $1 the action), and
# what it rewrites to.
OAUTH2_PATH = "/oauth2/(" + "|".join(OAUTH2_ACTIONS) + ")$"
OAUTH2_REWRITE = "/oauth2/$1/{workspace}"
# Paths a browser may write that must never reach authgate's auth route through the /oauth2
# Ingress, as the controller sees them after normalising (NGINX and Traefik remove dot
# segments and doubled slashes before matching).
OAUTH2_NOT_ROUTED = ("/oauth2/auth", "/oauth2/auth/mcd", "/oauth2/auth/mcd/redirect",
                     "/oauth2/AUTH/mcd", "/oauth2/start/mcd", "/oauth2/start/", "/oauth2/",
                     "/oauth2/startx", "/oauth2/xstart", "/oauth2/userinfo/auth/mcd",
                     "/oauth2/metrics", "/oauth2/ping")


def regex_rewrite(regex: str, replacement: str, path: str, whole: bool) -> str | None:
    """What a regex route does to `path`: None when `regex` does not match it; else, with
    `$1` in `replacement` standing for the first group, the whole path replaced (`whole`,
    NGINX's rewrite) or each match replaced (Traefik's replacePathRegex, Go's
    ReplaceAllString). Python's re stands in for PCRE and Go's regexp: the patterns here use
    only what the three share."""
    m = re.search(regex, path)
    if not m:
        return None
    expand = lambda match: re.sub(r"\$(\d)",  # noqa: E731
                                  lambda g: match.group(int(g.group(1))) or "", replacement)
    return expand(m) if whole else re.sub(regex, expand, path)


def auth_annotations(workspace: str) -> dict[str, str]:
    """The four annotations every Ingress of `workspace` carries, exactly."""
    return {
        ANN + "auth-url": f"{AUTH_URL}/{workspace}",
        ANN + "auth-signin": AUTH_SIGNIN,
        ANN + "auth-response-headers": AUTH_HEADERS,
        ANN + "auth-keepalive": "32",
    }


def emitted_headers(cfg: dict) -> set[str]:
    """The headers authgate can send for a workspace config: user and email always, the
    preferred username and groups when [headers] maps a claim to them, the tokens when
    [headers] passes them, and every header [headers.claims] names."""
    headers = cfg.get("headers", {})
    out = {"X-Auth-Request-User", "X-Auth-Request-Email"}
    if "preferred_username" in headers:
        out.add("X-Auth-Request-Preferred-Username")
    if "groups" in headers:
        out.add("X-Auth-Request-Groups")
    if headers.get("pass_access_token"):
        out.add("X-Auth-Request-Access-Token")
    if headers.get("pass_authorization_header"):
        out.add("Authorization")
    if headers.get("pass_id_token"):
        out.add("X-Auth-Request-Id-Token")
    out.update(headers.get("claims", {}).keys())
    return out

SECRETS_DIR = "/var/run/secrets/authgate"
ARCH_TAG = re.compile(r"(amd64|x86[_-]64|x64|i386|i686|arm64|aarch64|armv?[5-8]|ppc64le|s390x)",
                      re.IGNORECASE)


# === rendering ===

def render(kubectl: str, path: Path) -> list[dict]:
    """`kubectl kustomize path`, parsed; raises with kustomize's message on failure."""
    proc = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path.relative_to(ROOT)} failed:\n{proc.stderr}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


class Tree:
    """The rendered platform plus authgate's config, indexed for the checks."""

    def __init__(self, kubectl: str):
        self.kubectl = kubectl
        self.objects = render(kubectl, K8S)
        self.standalone = {d: render(kubectl, K8S / d) for d in STANDALONE}
        self.workspaces = {
            p.stem: tomllib.loads(p.read_text()) for p in sorted((CONFIG / "workspaces").glob("*.toml"))
        }
        self.server = tomllib.loads((CONFIG / "authgate.toml").read_text())
        self.domain = self.authgate_env().get("AUTHGATE_DOMAIN")
        self._traefik: list[dict] | None = None

    def of(self, kind: str, namespace: str | None = None) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind
                and (namespace is None or ns(o) == namespace)]

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        for o in self.of(kind, namespace):
            if o["metadata"]["name"] == name:
                return o
        return None

    def authgate_deployment(self) -> dict:
        d = self.get("Deployment", AUTHGATE_NS, "authgate")
        assert d, "no Deployment authgate in namespace authgate"
        return d

    def authgate_container(self) -> dict:
        return container(self.authgate_deployment(), "authgate")

    def authgate_env(self) -> dict:
        d = self.get("Deployment", AUTHGATE_NS, "authgate")
        if not d:
            return {}
        return {e["name"]: e.get("value") for e in container(d, "authgate").get("env", [])}

    def workspace_hosts(self) -> dict[str, str]:
        """host -> workspace, from config/workspaces/*.toml with {domain} filled in."""
        owner: dict[str, str] = {}
        for ws, cfg in self.workspaces.items():
            for h in cfg.get("hosts", []):
                host = h.replace("{domain}", self.domain or "{domain}")
                assert host not in owner, f"host {host} is in both {owner[host]} and {ws}"
                owner[host] = ws
        return owner

    def traefik(self) -> list[dict]:
        """The Traefik variant, k8s/traefik/, rendered (once)."""
        if self._traefik is None:
            self._traefik = render(self.kubectl, K8S / "traefik")
        return self._traefik

    def helmchart(self) -> tuple[dict, dict]:
        charts = [o for o in self.of("HelmChart") if o["spec"].get("chart") == "ingress-nginx"]
        assert len(charts) == 1, f"expected one ingress-nginx HelmChart, found {len(charts)}"
        chart = charts[0]
        return chart, yaml.safe_load(chart["spec"].get("valuesContent", "")) or {}


def ns(o: dict) -> str | None:
    return o["metadata"].get("namespace")


def name(o: dict) -> str:
    return f"{o['kind']} {ns(o) or '-'}/{o['metadata']['name']}"


def container(deploy: dict, cname: str) -> dict:
    for c in deploy["spec"]["template"]["spec"]["containers"]:
        if c["name"] == cname:
            return c
    raise AssertionError(f"{name(deploy)} has no container {cname}")


def containers(deploy: dict) -> list[dict]:
    spec = deploy["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def ingress_routes(ing: dict):
    """(host, path, pathType, service name, service port) for every rule of an Ingress."""
    for rule in ing["spec"].get("rules", []):
        for p in rule.get("http", {}).get("paths", []):
            svc = p["backend"]["service"]
            yield rule.get("host"), p["path"], p.get("pathType"), svc["name"], svc["port"]


def service_port(svc: dict, ref: dict) -> dict | None:
    for p in svc["spec"].get("ports", []):
        if ("name" in ref and p.get("name") == ref["name"]) or \
           ("number" in ref and p.get("port") == ref["number"]):
            return p
    return None


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def host_prefix(host: str, domain: str) -> str | None:
    if host == domain:
        return ""
    if host.endswith("." + domain):
        return host[: -len(domain) - 1]
    return None


# === checks ===
# Each check takes the Tree and raises AssertionError listing everything wrong.

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def fail_if(problems: list[str]):
    if problems:
        raise AssertionError("\n    ".join([""] + problems))


@check
def standalone_directories_render_alone(t: Tree):
    problems = []
    for d, namespace in STANDALONE.items():
        objs = t.standalone[d]
        spaces = {o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"}
        if namespace not in spaces:
            problems.append(f"k8s/{d} alone does not create its namespace {namespace}")
        for o in objs:
            if o["kind"] != "Namespace" and ns(o) not in (namespace, "kube-system"):
                problems.append(f"k8s/{d}: {name(o)} outside namespace {namespace}")
    # The whole is the union of its parts: nothing only appears when applied together.
    whole = sorted(name(o) for o in t.objects)
    parts = sorted(name(o) for objs in t.standalone.values() for o in objs)
    if whole != parts:
        problems.append("k8s/ renders differently from the union of its directories")
    fail_if(problems)


@check
def domain_is_set_once_and_filled_everywhere(t: Tree):
    problems = []
    if not t.domain or "DOMAIN" in t.domain:
        problems.append(f"authgate's AUTHGATE_DOMAIN is {t.domain!r}")
    for ing in t.of("Ingress"):
        for host, *_ in ingress_routes(ing):
            if not host or "DOMAIN" in host or host_prefix(host, t.domain or "") is None:
                problems.append(f"{name(ing)} serves {host!r}, not a host of {t.domain}")
    # The domain is written in exactly one manifest (comments aside).
    literal = t.domain or "\0"
    writers = []
    for p in sorted(K8S.rglob("*")):
        if p.suffix in (".yaml", ".yml", ".conf", ".html") and p.is_file():
            code = "\n".join(line.split("#")[0] for line in p.read_text().splitlines())
            if literal in code:
                writers.append(str(p.relative_to(ROOT)))
    if writers != ["k8s/components/domain/domain.yaml"]:
        problems.append(f"the domain {literal} is written in {writers}, "
                        "expected only k8s/components/domain/domain.yaml")
    fail_if(problems)


@check
def no_secret_values_are_committed(t: Tree):
    secrets = [name(o) for o in t.objects if o["kind"] == "Secret"]
    fail_if([f"{s} is rendered from the repository; secrets are created by hand" for s in secrets])


@check
def protected_ingresses_ask_authgate(t: Tree):
    problems = []
    owners = t.workspace_hosts()
    svc = t.get("Service", AUTHGATE_NS, "authgate")
    url = urlsplit(AUTH_URL)
    if not svc:
        problems.append("auth-url names Service authgate/authgate, which does not exist")
    elif url.hostname != "authgate.authgate.svc.cluster.local" or \
            not service_port(svc, {"number": url.port or 80}):
        problems.append(f"auth-url {AUTH_URL} does not match Service authgate's ports")
    for ing in t.of("Ingress"):
        ann = ing["metadata"].get("annotations", {})
        hosts = {h for h, *_ in ingress_routes(ing)}
        protected = {owners.get(h) for h in hosts
                     if t.workspaces.get(owners.get(h), {}).get("auth", "none") != "none"}
        if ns(ing) == AUTHGATE_NS:
            # The /oauth2 routes themselves: asking authgate there would loop.
            if any(k.startswith(ANN + "auth-") for k in ann):
                problems.append(f"{name(ing)} (authgate's own routes) carries auth annotations")
        else:
            # Workspaces without login ask authgate too (202, no identity), so that a client's
            # own X-Auth-Request-* headers are replaced by nothing before they reach the app.
            for key, want in auth_annotations(ns(ing)).items():
                if ann.get(key) != want:
                    kind = "protected " if protected else ""
                    problems.append(f"{kind}{name(ing)}: {key} is {ann.get(key)!r}, want {want!r}")
    fail_if(problems)


@check
def ingress_hosts_are_exactly_the_workspace_hosts(t: Tree):
    problems = []
    owners = t.workspace_hosts()
    served: set[str] = set()
    for ing in t.of("Ingress"):
        for host, *_ in ingress_routes(ing):
            served.add(host)
            ws = owners.get(host)
            if ws is None:
                problems.append(f"{name(ing)} serves {host}, which no workspace of config/ has")
            elif ns(ing) not in (ws, AUTHGATE_NS):
                problems.append(f"{name(ing)} serves {host} of workspace {ws} from namespace {ns(ing)}")
    for host, ws in owners.items():
        if host not in served:
            problems.append(f"workspace {ws}'s host {host} has no Ingress")
    for ws in t.workspaces:
        if not t.get("Namespace", None, ws):
            problems.append(f"workspace {ws} has no namespace {ws}")
    fail_if(problems)


@check
def auth_url_names_the_workspace_of_its_namespace(t: Tree):
    """The workspace whose policy applies is the one the Ingress's author wrote: auth-url ends
    in /oauth2/auth/<namespace>, the namespace is a workspace, and the Ingress serves only that
    workspace's hosts. (X-Original-URL names the client's own Host header, so it cannot.)
    A query (?allowed_groups=...) may narrow one Ingress further; it never names a workspace."""
    problems = []
    owners = t.workspace_hosts()
    for ing in t.of("Ingress"):
        if ns(ing) == AUTHGATE_NS:
            continue
        url = ing["metadata"].get("annotations", {}).get(ANN + "auth-url", "")
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        segments = parts.path.split("/")  # "/oauth2/auth/mcd" -> ["", "oauth2", "auth", "mcd"]
        named = segments[3] if len(segments) == 4 and segments[1:3] == ["oauth2", "auth"] else None
        if base != urlsplit(AUTH_URL)._replace(path="").geturl() or named is None:
            problems.append(f"{name(ing)}: auth-url {url!r} is not {AUTH_URL}/<workspace>")
        elif named != ns(ing):
            problems.append(f"{name(ing)}: auth-url names workspace {named!r}, "
                            f"its namespace is {ns(ing)!r}")
        if parts.fragment:
            problems.append(f"{name(ing)}: auth-url {url!r} has a fragment")
        if ns(ing) not in t.workspaces:
            problems.append(f"{name(ing)}: namespace {ns(ing)} is no workspace of config/")
        for host, *_ in ingress_routes(ing):
            if owners.get(host) != ns(ing):
                problems.append(f"{name(ing)} serves {host} (workspace {owners.get(host)}) "
                                f"but asks authgate about workspace {ns(ing)}")
    fail_if(problems)


@check
def oauth2_is_routed_to_authgate_on_every_workspace_host(t: Tree):
    """Each workspace's /oauth2 Ingress rewrites browsers' oauth2-proxy paths to authgate's
    /oauth2/<action>/<its workspace> and serves that workspace's hosts, and only them."""
    problems = []
    owners = t.workspace_hosts()
    routed: dict[str, list[str]] = {}
    for ing in t.of("Ingress", AUTHGATE_NS):
        ws = ing["metadata"].get("labels", {}).get("platform/workspace")
        ann = ing["metadata"].get("annotations", {})
        if ws not in t.workspaces:
            problems.append(f"{name(ing)}: label platform/workspace {ws!r} is no workspace of config/")
            continue
        want = OAUTH2_REWRITE.format(workspace=ws)
        if ann.get(ANN + "rewrite-target") != want:
            problems.append(f"{name(ing)}: rewrite-target {ann.get(ANN + 'rewrite-target')!r}, "
                            f"want {want!r}")
        if ann.get(ANN + "use-regex") != "true":
            problems.append(f"{name(ing)}: use-regex is {ann.get(ANN + 'use-regex')!r}, want 'true'")
        for host, path, ptype, svc, _ in ingress_routes(ing):
            # What ingress-nginx renders: location ~* "^<path>" with
            # rewrite "(?i)<path>" <rewrite-target> break;
            rewrite = ann.get(ANN + "rewrite-target", "")
            routed_paths = {p: regex_rewrite("(?i)^" + path, rewrite, p, whole=True)
                            for p in [f"/oauth2/{a}" for a in OAUTH2_ACTIONS] + list(OAUTH2_NOT_ROUTED)}
            for action in OAUTH2_ACTIONS:
                got = routed_paths[f"/oauth2/{action}"]
                if got != f"/oauth2/{action}/{ws}":
                    problems.append(f"{name(ing)} {host}: /oauth2/{action} becomes {got!r}, "
                                    f"want /oauth2/{action}/{ws}")
            for p in OAUTH2_NOT_ROUTED:
                if routed_paths[p] is not None:
                    problems.append(f"{name(ing)} {host}: {p} reaches authgate as {routed_paths[p]}")
            if (path, ptype, svc) != (OAUTH2_PATH, "ImplementationSpecific", "authgate"):
                problems.append(f"{name(ing)} {host}: {path} ({ptype}) -> {svc}, want "
                                f"{OAUTH2_PATH} (ImplementationSpecific) -> authgate")
                continue
            if owners.get(host) != ws:
                problems.append(f"{name(ing)} (workspace {ws}) serves {host}, a host of "
                                f"workspace {owners.get(host)}")
            routed.setdefault(host, []).append(ing["metadata"]["name"])
    for host, ws in owners.items():
        if host not in routed:
            problems.append(f"{host} (workspace {ws}) has no {OAUTH2_PATH} route to authgate")
        elif len(routed[host]) > 1:
            problems.append(f"{host} has {OAUTH2_PATH} in several Ingresses: {routed[host]}")
    fail_if(problems)


TRAEFIK_ANN = "traefik.ingress.kubernetes.io/router.middlewares"
AUTHGATE_ORIGIN = "http://authgate.authgate.svc.cluster.local"


# The client headers authgate reads on the ForwardAuth route (/oauth2/auth/<ws>/redirect):
# the session cookie, a bearer token, Accept (a browser gets the 302, an API client the 401),
# and the two a CORS preflight of a [[public]] rule with cors_preflight is told by. Traefik
# passes a client's every header to the auth address unless authRequestHeaders names the ones
# to pass; it writes the X-Forwarded-* headers itself after that filter.
TRAEFIK_AUTH_REQUEST_HEADERS = ("Accept", "Authorization", "Cookie", "Origin",
                                "Access-Control-Request-Method")


@check
def traefik_variant_pins_every_route_to_its_workspace(t: Tree):
    """k8s/traefik: every app Ingress of a workspace is of class traefik and uses its own
    namespace's ForwardAuth Middleware, whose address is /oauth2/auth/<that workspace>/redirect,
    whose authResponseHeaders are every header authgate can send and whose authRequestHeaders
    are exactly the client headers authgate reads, with trustForwardHeader off; every /oauth2
    Ingress routes exactly the browser's actions (Exact /oauth2/<action>, nothing else under
    /oauth2) through the rewrite Middleware of the workspace it is labelled with, rewriting to
    /oauth2/<action>/<that workspace>, on that workspace's hosts only; no ingress-nginx auth
    annotation is left."""
    objs = t.traefik()
    problems = []
    mw = {(ns(o), o["metadata"]["name"]): o["spec"] for o in objs if o["kind"] == "Middleware"}
    owners = t.workspace_hosts()
    want_paths = sorted(f"/oauth2/{a}" for a in OAUTH2_ACTIONS)
    for ing in (o for o in objs if o["kind"] == "Ingress"):
        ann = ing["metadata"].get("annotations", {})
        if ing["spec"].get("ingressClassName") != "traefik":
            problems.append(f"{name(ing)}: ingressClassName is not traefik")
        if any(k.startswith(ANN + "auth-") for k in ann):
            problems.append(f"{name(ing)}: ingress-nginx auth annotations left")
        if ns(ing) == AUTHGATE_NS:
            if any(k.startswith(ANN) for k in ann):
                problems.append(f"{name(ing)}: ingress-nginx annotations left")
            ws = ing["metadata"].get("labels", {}).get("platform/workspace")
            if ann.get(TRAEFIK_ANN) != f"{ws}-authgate-oauth2@kubernetescrd":
                problems.append(f"{name(ing)}: middlewares {ann.get(TRAEFIK_ANN)!r}, want "
                                f"the rewrite of its workspace {ws}")
            spec = mw.get((ws, "authgate-oauth2"), {}).get("replacePathRegex", {})
            if spec.get("replacement") != OAUTH2_REWRITE.format(workspace=ws):
                problems.append(f"{ws}/authgate-oauth2 rewrites to {spec.get('replacement')!r}")
            paths = []
            for host, path, ptype, svc, _ in ingress_routes(ing):
                paths.append(path)
                if (ptype, svc) != ("Exact", "authgate"):
                    problems.append(f"{name(ing)} {host}: {path} ({ptype}) -> {svc}, want "
                                    "Exact -> authgate")
                if owners.get(host) != ws:
                    problems.append(f"{name(ing)} (workspace {ws}) serves {host}")
                # The Middleware turns each routed path into the workspace's route.
                got = regex_rewrite(spec.get("regex", "(?!)"), spec.get("replacement", ""),
                                    path, whole=False)
                if got != f"{path}/{ws}":
                    problems.append(f"{ws}/authgate-oauth2 turns {path} into {got!r}, want "
                                    f"{path}/{ws}")
            if sorted(paths) != want_paths:
                problems.append(f"{name(ing)} routes {sorted(paths)}, want exactly {want_paths}")
            continue
        ws = ns(ing)
        if ann.get(TRAEFIK_ANN) != f"{ws}-authgate@kubernetescrd":
            problems.append(f"{name(ing)}: middlewares {ann.get(TRAEFIK_ANN)!r}, want {ws}'s ForwardAuth")
        fa = mw.get((ws, "authgate"), {}).get("forwardAuth", {})
        if fa.get("address") != f"{AUTHGATE_ORIGIN}/oauth2/auth/{ws}/redirect":
            problems.append(f"{ws}/authgate: address {fa.get('address')!r}")
        missing = emitted_headers(t.workspaces.get(ws, {})) - set(fa.get("authResponseHeaders", []))
        if missing:
            problems.append(f"{ws}/authgate: authResponseHeaders lacks {sorted(missing)}")
        for host, *_ in ingress_routes(ing):
            if owners.get(host) != ws:
                problems.append(f"{name(ing)} (workspace {ws}) serves {host}")
    for (space, mw_name), spec in sorted(mw.items()):
        if "forwardAuth" not in spec:
            continue
        fa = spec["forwardAuth"]
        passed = fa.get("authRequestHeaders", [])
        if sorted(h.lower() for h in passed) != sorted(h.lower() for h in TRAEFIK_AUTH_REQUEST_HEADERS):
            problems.append(f"{space}/{mw_name}: authRequestHeaders {passed}, want exactly "
                            f"{list(TRAEFIK_AUTH_REQUEST_HEADERS)} (without the list Traefik "
                            "passes every client header, X-Original-URL included)")
        if fa.get("trustForwardHeader", False) is not False:
            problems.append(f"{space}/{mw_name}: trustForwardHeader is "
                            f"{fa.get('trustForwardHeader')!r} (the client's X-Forwarded-* "
                            "would describe the request authgate judges)")
    fail_if(problems)


def traefik_chart_values(t: Tree) -> tuple[dict, dict]:
    """K3s's Traefik chart config in k8s/traefik, and its values."""
    configs = [o for o in t.traefik() if o["kind"] == "HelmChartConfig"]
    assert len(configs) == 1, f"expected one HelmChartConfig in k8s/traefik, found {len(configs)}"
    config = configs[0]
    return config, yaml.safe_load(config["spec"].get("valuesContent", "")) or {}


@check
def traefik_listens_only_inside_the_cluster_and_keeps_the_browsers_address(t: Tree):
    """k8s/traefik adjusts K3s's bundled Traefik (its HelmChart kube-system/traefik) as the
    ingress-nginx HelmChart is set: a ClusterIP Service (ServiceLB would otherwise bind ports
    80 and 443 on every node), no hostPort or hostNetwork; the web entrypoint trusts
    X-Forwarded-* from exactly the network ingress-nginx's proxy-real-ip-cidr names (the pod
    network, where cloudflared lives), never from everyone; cloudflared goes to that Service;
    and a NetworkPolicy admits only cloudflared to the web entrypoint."""
    problems = []
    config, values = traefik_chart_values(t)
    if (ns(config), config["metadata"]["name"]) != ("kube-system", "traefik"):
        problems.append(f"{name(config)} does not configure K3s's Traefik (kube-system/traefik)")
    service = values.get("service", {})
    if service.get("type") != "ClusterIP":
        problems.append(f"Traefik's service.type is {service.get('type')!r}, want ClusterIP "
                        "(a LoadBalancer listens on the home network through ServiceLB)")
    if service.get("externalIPs"):
        problems.append("Traefik's Service has externalIPs")
    if values.get("hostNetwork"):
        problems.append("Traefik runs on the host network")
    ports = values.get("ports", {})
    for port, spec in ports.items():
        if (spec or {}).get("hostPort"):
            problems.append(f"Traefik's port {port} binds hostPort {spec['hostPort']}")
        for what in ("forwardedHeaders", "proxyProtocol"):
            if (spec or {}).get(what, {}).get("insecure"):
                problems.append(f"Traefik's port {port}: {what}.insecure trusts everyone")
    _, nginx = t.helmchart()
    cidr = nginx.get("controller", {}).get("config", {}).get("proxy-real-ip-cidr", "")
    want = sorted(n.strip() for n in cidr.split(",") if n.strip())
    web = ports.get("web", {}) or {}
    trusted = web.get("forwardedHeaders", {}).get("trustedIPs", [])
    if sorted(trusted) != want or not want:
        problems.append(f"Traefik's web entrypoint trusts X-Forwarded-* from {trusted}, want "
                        f"exactly ingress-nginx's proxy-real-ip-cidr {want}")
    authgate_trusts = [ipaddress.ip_network(n) for n in t.server.get("trusted_proxies", [])]
    for net in trusted:
        net = ipaddress.ip_network(net)
        if not any(net.version == tn.version and net.subnet_of(tn) for tn in authgate_trusts):
            problems.append(f"Traefik's trusted {net} is not within authgate's trusted_proxies")
    # cloudflared sends everything to this Service (the chart names it after the release).
    objs = t.traefik()
    cm = next((o for o in objs if o["kind"] == "ConfigMap" and ns(o) == "cloudflare"
               and o["metadata"]["name"].startswith("cloudflared-config")), None)
    service_url = f"http://{config['metadata']['name']}.kube-system.svc.cluster.local:80"
    rules = yaml.safe_load(cm["data"]["config.yaml"]).get("ingress", []) if cm else []
    if not rules or any(r.get("service") != service_url for r in rules):
        problems.append(f"cloudflared's rules {rules} do not all go to {service_url}")
    # Only cloudflared reaches the web entrypoint, whose forwarded headers are believed.
    policies = [o for o in objs if o["kind"] == "NetworkPolicy" and ns(o) == "kube-system"
                and selects(o["spec"]["podSelector"].get("matchLabels", {}),
                            {"app.kubernetes.io/name": "traefik",
                             "app.kubernetes.io/instance": "traefik-kube-system"})]
    if not policies:
        problems.append("no NetworkPolicy selects Traefik's pods")
    web_port = web.get("port", 8000)
    for p in policies:
        if "Ingress" not in p["spec"].get("policyTypes", []):
            problems.append(f"{name(p)} does not restrict Ingress")
        for rule in p["spec"].get("ingress", []):
            peers = rule.get("from", [])
            if not peers:
                problems.append(f"{name(p)} admits everyone")
            for peer in peers:
                src = peer.get("namespaceSelector", {}).get("matchLabels", {})
                pod = peer.get("podSelector", {}).get("matchLabels", {})
                if src != {"kubernetes.io/metadata.name": "cloudflare"} or \
                        pod.get("app.kubernetes.io/name") != "cloudflared":
                    problems.append(f"{name(p)} admits {peer}")
            if [q.get("port") for q in rule.get("ports", [])] != [web_port]:
                problems.append(f"{name(p)} admits ports {rule.get('ports')}, want only the web "
                                f"entrypoint's {web_port}")
    fail_if(problems)


@check
def identity_headers_a_workspace_sends_are_overwritten_by_nginx(t: Tree):
    """NGINX sets only the headers listed in auth-response-headers; any other X-Auth-Request-*
    a client sends reaches the app. So every header a workspace's config makes authgate send
    must be listed on every Ingress of that workspace, or a client can forge it."""
    problems = []
    for ws, cfg in t.workspaces.items():
        emitted = emitted_headers(cfg)
        ingresses = t.of("Ingress", ws)
        if not ingresses:
            problems.append(f"workspace {ws} has no Ingress in namespace {ws}")
        for ing in ingresses:
            listed = ing["metadata"].get("annotations", {}).get(ANN + "auth-response-headers", "")
            have = {h.strip().lower() for h in listed.split(",") if h.strip()}
            missing = sorted(h for h in emitted if h.lower() not in have)
            if missing:
                problems.append(f"{name(ing)}: workspace {ws} sends {', '.join(missing)}, which "
                                f"auth-response-headers ({listed!r}) leaves forgeable")
    fail_if(problems)


@check
def route_table_matches_the_platform_design(t: Tree):
    problems = []
    found = {}
    for ing in t.of("Ingress"):
        if ns(ing) == AUTHGATE_NS:
            continue
        for host, path, ptype, svc, _ in ingress_routes(ing):
            found[(host_prefix(host, t.domain), path)] = (ns(ing), svc)
            if ptype != "Prefix":
                problems.append(f"{name(ing)} {host}{path}: pathType {ptype}, want Prefix")
    if found != ROUTES:
        for k in sorted(set(found) | set(ROUTES), key=str):
            if found.get(k) != ROUTES.get(k):
                problems.append(f"route {k}: found {found.get(k)}, want {ROUTES.get(k)}")
    for (prefix, path), (namespace, svc) in ROUTES.items():
        if not (K8S / "spaces" / namespace / "apps" / svc).is_dir():
            problems.append(f"app {svc} of {namespace} is not in k8s/spaces/{namespace}/apps/{svc}/")
    fail_if(problems)


@check
def ingress_backends_exist_with_matching_ports(t: Tree):
    problems = []
    _, values = t.helmchart()
    classes = {values.get("controller", {}).get("ingressClassResource", {}).get("name", "nginx")}
    for ing in t.of("Ingress"):
        if ing["spec"].get("ingressClassName") not in classes:
            problems.append(f"{name(ing)}: ingressClassName {ing['spec'].get('ingressClassName')!r},"
                            f" want one of {sorted(classes)}")
        for host, path, _, svc_name, ref in ingress_routes(ing):
            svc = t.get("Service", ns(ing), svc_name)
            if not svc:
                problems.append(f"{name(ing)} {host}{path}: no Service {svc_name} in {ns(ing)}")
                continue
            port = service_port(svc, ref)
            if not port:
                problems.append(f"{name(ing)} {host}{path}: Service {svc_name} has no port {ref}")
                continue
            problems += service_reaches_pods(t, svc, port)
    fail_if(sorted(set(problems)))


def service_reaches_pods(t: Tree, svc: dict, port: dict) -> list[str]:
    selector = svc["spec"].get("selector", {})
    target = port.get("targetPort", port["port"])
    backends = [d for d in t.of("Deployment", ns(svc))
                if selects(selector, d["spec"]["template"]["metadata"].get("labels", {}))]
    if not backends:
        return [f"{name(svc)} selects no Deployment's pods"]
    problems = []
    for d in backends:
        ports = [p for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])]
        if not any(p.get("name") == target or p["containerPort"] == target for p in ports):
            problems.append(f"{name(svc)} targets port {target!r}, which {name(d)} does not expose")
    return problems


@check
def images_are_pinned_and_multi_arch(t: Tree):
    listed = set()
    for line in (Path(__file__).parent / "multiarch-images.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            listed.add(line)
    problems = []
    for d in t.of("Deployment"):
        for c in containers(d):
            image = c["image"]
            repo, tag, digest = split_image(image)
            if not tag and not digest:
                problems.append(f"{name(d)}: {image} has no tag (implicit latest)")
            if tag == "latest":
                problems.append(f"{name(d)}: {image} uses :latest")
            if tag and ARCH_TAG.search(tag):
                problems.append(f"{name(d)}: {image} has an architecture-specific tag")
            if ARCH_TAG.search(repo.rsplit("/", 1)[-1]):
                problems.append(f"{name(d)}: {image} is an architecture-specific repository")
            if short_repo(repo) not in listed:
                problems.append(f"{name(d)}: {repo} is not in tests/k8s/multiarch-images.txt")
    fail_if(problems)


def split_image(image: str) -> tuple[str, str | None, str | None]:
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    repo, tag = image, None
    if ":" in image.rsplit("/", 1)[-1]:
        repo, tag = image.rsplit(":", 1)
    return repo, tag, digest


def short_repo(repo: str) -> str:
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/"):
        if repo.startswith(prefix):
            return repo[len(prefix):]
    return repo


@check
def deployments_have_probes_limits_and_hardening(t: Tree):
    problems = []
    for d in t.of("Deployment"):
        pod = d["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            problems.append(f"{name(d)} shares the host's namespaces")
        for c in containers(d):
            where = f"{name(d)} container {c['name']}"
            sc = c.get("securityContext", {})
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c and c not in pod.get("initContainers", []):
                    problems.append(f"{where}: no {probe}")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(kind, {}):
                        problems.append(f"{where}: no resources.{kind}.{r}")
            if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
                problems.append(f"{where}: runAsNonRoot is not true")
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            if uid is None or uid == 0:
                problems.append(f"{where}: runAsUser is {uid!r}, want a fixed non-zero uid")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []) or \
                    sc.get("capabilities", {}).get("add"):
                problems.append(f"{where}: capabilities are not drop [ALL] with nothing added")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
            if seccomp != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile {seccomp!r}, want RuntimeDefault")
    fail_if(problems)


def spread_over_nodes(d: dict) -> bool:
    labels = d["spec"]["template"]["metadata"]["labels"]
    for c in d["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
        if c.get("topologyKey") == "kubernetes.io/hostname" and c.get("maxSkew") == 1 and \
                selects(c.get("labelSelector", {}).get("matchLabels", {}), labels):
            return True
    return False


def pdb_covers(t: Tree, d: dict) -> bool:
    labels = d["spec"]["template"]["metadata"]["labels"]
    return any(selects(p["spec"]["selector"].get("matchLabels", {}), labels)
               and p["spec"].get("minAvailable") == 1
               for p in t.of("PodDisruptionBudget", ns(d)))


@check
def authgate_deployment(t: Tree):
    problems = []
    d = t.authgate_deployment()
    c = t.authgate_container()
    pod = d["spec"]["template"]["spec"]
    if d["spec"].get("replicas") != 2:
        problems.append("authgate: replicas is not 2")
    if not spread_over_nodes(d):
        problems.append("authgate: no topology spread over kubernetes.io/hostname")
    if not pdb_covers(t, d):
        problems.append("authgate: no PodDisruptionBudget with minAvailable 1")
    probes = {p: c.get(p, {}).get("httpGet", {}) for p in ("readinessProbe", "livenessProbe")}
    if probes["readinessProbe"].get("path") != "/ready":
        problems.append("authgate: readiness probe is not GET /ready")
    if probes["livenessProbe"].get("path") != "/ping":
        problems.append("authgate: liveness probe is not GET /ping")
    listen = t.authgate_env().get("AUTHGATE_LISTEN") or t.server.get("listen", "0.0.0.0:4180")
    port = int(listen.rsplit(":", 1)[1])
    named = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    for probe in probes.values():
        if named.get(probe.get("port"), probe.get("port")) != port:
            problems.append(f"authgate: probe port {probe.get('port')!r} is not the listen port {port}")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("authgate: the service account token is mounted")
    if not t.server.get("listen", "").endswith(f":{port}"):
        problems.append(f"authgate: config listen {t.server.get('listen')} differs from {listen}")
    # A stopping pod must finish draining before the kubelet kills it.
    env = t.authgate_env()
    secs = lambda v: int(str(v).rstrip("s"))  # noqa: E731  the manifests write whole seconds
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    drain = secs(env.get("AUTHGATE_DRAIN_DELAY", "3s")) + secs(env.get("AUTHGATE_DRAIN_TIMEOUT", "10s"))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if pre_stop < 1:
        problems.append("authgate: no preStop sleep before SIGTERM (NGINX would still send requests)")
    if pre_stop + drain >= grace:
        problems.append(f"authgate: preStop {pre_stop} s + drain {drain} s do not fit "
                        f"terminationGracePeriodSeconds {grace}")
    fail_if(problems)


@check
def authgate_config_and_secrets(t: Tree):
    problems = []
    d = t.authgate_deployment()
    c = t.authgate_container()
    pod = d["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    args = c.get("args", [])
    config_dir = args[args.index("--config") + 1] if "--config" in args else None
    config_vol = next((n for n, p in mounts.items() if p == config_dir), None)
    if not config_vol or "configMap" not in volumes.get(config_vol, {}):
        problems.append(f"authgate: --config {config_dir} is not a ConfigMap mount")
    else:
        cm_ref = volumes[config_vol]["configMap"]
        cm = t.get("ConfigMap", AUTHGATE_NS, cm_ref["name"])
        if not cm:
            problems.append(f"authgate: ConfigMap {cm_ref['name']} missing")
        else:
            items = {i["key"]: i["path"] for i in cm_ref.get("items", [])} or \
                {k: k for k in cm["data"]}
            want = {"authgate.toml": CONFIG / "authgate.toml"} | {
                p.name: p for p in (CONFIG / "workspaces").glob("*.toml")}
            paths = {"authgate.toml": "authgate.toml"} | {
                p.name: f"workspaces/{p.name}" for p in (CONFIG / "workspaces").glob("*.toml")}
            if set(cm["data"]) != set(want):
                problems.append(f"authgate-config keys {sorted(cm['data'])} are not the files of "
                                f"config/: {sorted(want)}")
            for key, path in want.items():
                if cm["data"].get(key) != path.read_text():
                    problems.append(f"authgate-config {key} differs from {path.relative_to(ROOT)} "
                                    "(scripts/check-k8s --sync-config copies it)")
                if items.get(key) != paths[key]:
                    problems.append(f"authgate-config {key} is mounted at {items.get(key)!r}, "
                                    f"want {paths[key]}")
    secret_vol = next((n for n, p in mounts.items() if p == SECRETS_DIR), None)
    secret_name = volumes.get(secret_vol, {}).get("secret", {}).get("secretName")
    if not secret_name:
        problems.append(f"authgate: no Secret volume at {SECRETS_DIR}")
    files = [t.server.get("secrets", {}).get("cookie_secrets_file")] + [
        p.get("client_secret_file") for cfg in t.workspaces.values() for p in cfg.get("provider", [])]
    for f in files:
        if f and os.path.dirname(f) != SECRETS_DIR:
            problems.append(f"authgate config reads {f}, outside the Secret mount {SECRETS_DIR}")
    env = c.get("env", [])
    if any("value" in e and "SECRET" in e["name"] for e in env):
        problems.append("authgate: a secret is written in the Deployment's env")
    fail_if(problems)


@check
def authgate_admits_only_the_ingress_controller(t: Tree):
    problems = []
    d = t.authgate_deployment()
    labels = d["spec"]["template"]["metadata"]["labels"]
    policies = [p for p in t.of("NetworkPolicy", AUTHGATE_NS)
                if selects(p["spec"]["podSelector"].get("matchLabels", {}), labels)
                or p["spec"]["podSelector"] == {}]
    if not policies:
        problems.append("authgate: no NetworkPolicy selects its pods")
    chart, _ = t.helmchart()
    for p in policies:
        if "Ingress" not in p["spec"].get("policyTypes", []):
            problems.append(f"{name(p)} does not restrict Ingress")
        for rule in p["spec"].get("ingress", []):
            peers = rule.get("from", [])
            if not peers:
                problems.append(f"{name(p)} admits everyone")
            for peer in peers:
                nsl = peer.get("namespaceSelector", {}).get("matchLabels", {})
                pod = peer.get("podSelector", {}).get("matchLabels", {})
                source = nsl.get("kubernetes.io/metadata.name")
                if "ipBlock" in peer:
                    problems.append(f"{name(p)} admits an ipBlock")
                elif source == chart["spec"]["targetNamespace"]:
                    if pod.get("app.kubernetes.io/component") != "controller":
                        problems.append(f"{name(p)} admits more of ingress-nginx than its controller")
                elif p["metadata"]["name"] != "allow-prometheus":
                    problems.append(f"{name(p)} admits {peer}")
    fail_if(problems)


@check
def workspaces_admit_only_the_ingress_controller(t: Tree):
    problems = []
    for ws in t.workspaces:
        policies = t.of("NetworkPolicy", ws)
        if not any(p["spec"]["podSelector"] == {} and "Ingress" in p["spec"].get("policyTypes", [])
                   for p in policies):
            problems.append(f"workspace {ws}: no NetworkPolicy covering all its pods")
        for p in policies:
            for rule in p["spec"].get("ingress", []):
                for peer in rule.get("from", [{}]):
                    src = peer.get("namespaceSelector", {}).get("matchLabels", {})
                    if src.get("kubernetes.io/metadata.name") != "ingress-nginx":
                        problems.append(f"{name(p)} admits {peer}")
    fail_if(problems)


@check
def forwarded_headers_bring_the_user_back_to_https(t: Tree):
    """The pieces that together keep https and the exact URL (see docs/deploy-k3s.md)."""
    problems = []
    chart, values = t.helmchart()
    config = values.get("controller", {}).get("config", {})
    if config.get("use-forwarded-headers") != "true":
        problems.append("ingress-nginx: use-forwarded-headers is not \"true\" (authgate would see "
                        "X-Forwarded-Proto: http on /oauth2 and build http:// URLs)")
    cidr = config.get("proxy-real-ip-cidr")
    trusted = [ipaddress.ip_network(n) for n in t.server.get("trusted_proxies", [])]
    if not cidr:
        problems.append("ingress-nginx: proxy-real-ip-cidr is not set")
    else:
        for net in cidr.split(","):
            net = ipaddress.ip_network(net.strip())
            if not any(net.version == tn.version and net.subnet_of(tn) for tn in trusted):
                problems.append(f"ingress-nginx's proxy-real-ip-cidr {net} is not within "
                                f"authgate's trusted_proxies {t.server.get('trusted_proxies')}")
    if not AUTH_SIGNIN.startswith("https://$host/") or "rd=$escaped_request_uri" not in AUTH_SIGNIN:
        problems.append("auth-signin must be https with rd=$escaped_request_uri")
    for ws, cfg in t.workspaces.items():
        cookie = cfg.get("session", {}).get("cookie_name", "")
        if cfg.get("auth", "none") != "none" and not cookie.startswith(("__Host-", "__Secure-")):
            problems.append(f"workspace {ws}: cookie {cookie!r} is not __Host-/__Secure- (Secure)")
    fail_if(problems)


@check
def ingress_nginx_helmchart(t: Tree):
    problems = []
    chart, values = t.helmchart()
    spec = chart["spec"]
    ctrl = values.get("controller", {})
    if ns(chart) != "kube-system":
        problems.append("HelmChart must live in kube-system (K3s's Helm controller watches it)")
    if not t.get("Namespace", None, spec["targetNamespace"]):
        problems.append(f"target namespace {spec['targetNamespace']} is not declared")
    if ctrl.get("service", {}).get("type") != "ClusterIP":
        problems.append("controller service is not ClusterIP (it must not listen on the LAN)")
    if ctrl.get("replicaCount", 1) < 2:
        problems.append("controller replicaCount < 2")
    if not any(c.get("topologyKey") == "kubernetes.io/hostname"
               for c in ctrl.get("topologySpreadConstraints", [])):
        problems.append("controller replicas are not spread over nodes")
    for key in ("image", "defaultBackend"):
        if key in ctrl and "image" in str(ctrl[key]) and ARCH_TAG.search(str(ctrl[key])):
            problems.append(f"controller.{key} names an architecture-specific image")
    # The admission webhook (CVE-2025-1974's way in) must not run, and no NetworkPolicy rule
    # of the controller may admit every source.
    if ctrl.get("admissionWebhooks", {}).get("enabled", True) is not False:
        problems.append("controller.admissionWebhooks.enabled is not false")
    for pol in t.of("NetworkPolicy"):
        if ns(pol) != spec["targetNamespace"]:
            continue
        for rule in pol["spec"].get("ingress", []):
            if not rule.get("from"):
                problems.append(f"NetworkPolicy {pol['metadata']['name']} admits every source "
                                f"to {rule.get('ports')}")
    fail_if(problems)


@check
def cloudflared_reaches_the_ingress_controller(t: Tree):
    problems = []
    d = t.get("Deployment", "cloudflare", "cloudflared")
    assert d, "no Deployment cloudflared in namespace cloudflare"
    c = container(d, "cloudflared")
    if d["spec"].get("replicas") != 2:
        problems.append("cloudflared: replicas is not 2")
    if not spread_over_nodes(d):
        problems.append("cloudflared: no topology spread over kubernetes.io/hostname")
    if not pdb_covers(t, d):
        problems.append("cloudflared: no PodDisruptionBudget with minAvailable 1")
    args = c.get("args", [])
    metrics = args[args.index("--metrics") + 1] if "--metrics" in args else None
    named = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    live = c.get("livenessProbe", {}).get("httpGet", {})
    if not metrics or named.get(live.get("port"), live.get("port")) != int(metrics.rsplit(":", 1)[1]):
        problems.append(f"cloudflared: liveness probe port {live.get('port')!r} is not the "
                        f"metrics port ({metrics})")
    token = next((e for e in c.get("env", []) if e["name"] == "TUNNEL_TOKEN"), {})
    if "secretKeyRef" not in token.get("valueFrom", {}):
        problems.append("cloudflared: TUNNEL_TOKEN does not come from a Secret")
    config_path = args[args.index("--config") + 1] if "--config" in args else None
    mount = next((m for m in c.get("volumeMounts", [])
                  if config_path and config_path.startswith(m["mountPath"] + "/")), None)
    volumes = {v["name"]: v for v in d["spec"]["template"]["spec"].get("volumes", [])}
    cm_name = volumes.get(mount["name"], {}).get("configMap", {}).get("name") if mount else None
    cm = t.get("ConfigMap", "cloudflare", cm_name) if cm_name else None
    if not cm:
        fail_if(problems + [f"cloudflared: --config {config_path} is not a mounted ConfigMap"])
    conf = yaml.safe_load(cm["data"][os.path.basename(config_path)])
    rules = conf.get("ingress", [])
    chart, values = t.helmchart()
    want = (f"http://{chart['metadata']['name']}-controller."
            f"{chart['spec']['targetNamespace']}.svc.cluster.local:80")
    if not rules or "hostname" in rules[-1]:
        problems.append("cloudflared: the last ingress rule must be the catch-all")
    for r in rules:
        if r.get("service") != want:
            problems.append(f"cloudflared: rule {r} does not go to {want}")
    if values.get("controller", {}).get("service", {}).get("enableHttp", True) is False:
        problems.append("ingress-nginx: the controller's http port is disabled")
    fail_if(problems)


@check
def authgate_image_tag_is_the_crate_version(t: Tree):
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    version = cargo["package"]["version"]
    repo, tag, _ = split_image(t.authgate_container()["image"])
    fail_if([] if tag == version else
            [f"authgate image tag {tag!r} differs from Cargo.toml's version {version!r} "
             "(k8s/authgate/kustomization.yaml images.newTag)"])


# === runner ===

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", default=os.environ.get("KUBECTL", "kubectl"))
    args = parser.parse_args()
    try:
        tree = Tree(args.kubectl)
    except Exception as e:  # rendering failed: nothing else can be checked
        print(f"FAIL render: {e}")
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    for fn in CHECKS:
        try:
            fn(tree)
        except AssertionError as e:
            failed += 1
            print(f"FAIL {fn.__name__}:{e}")
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}: crashed\n{traceback.format_exc()}")
        else:
            passed += 1
            print(f"ok   {fn.__name__}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
