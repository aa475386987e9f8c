//! NGINX configuration as ingress-nginx renders it, for the tests' NGINX and the load
//! benchmark's.

/// The `Host` ingress-nginx sends with the auth subrequest: the auth Service's name.
pub const SERVICE_HOST: &str = "authgate.authgate.svc.cluster.local";

/// The `map` ingress-nginx renders into the `http` block for its `X-Request-ID`: `$req_id` is
/// the client's own `X-Request-ID` when it sent one, else NGINX's `$request_id`. Every
/// config using [`auth_location_headers`] needs it.
pub const REQ_ID_MAP: &str =
    "  map $http_x_request_id $req_id {\n    default $http_x_request_id;\n    \"\" $request_id;\n  }\n";

/// The directives of the auth location ingress-nginx renders for the `auth-url` annotation,
/// up to `proxy_buffering` (the buffer sizes, the HTTP version, the location's own
/// `proxy_pass` and keep-alive settings follow in the caller's text), indented for a location
/// block; `host` is the `Host` sent.
pub fn auth_location_headers(host: &str) -> String {
    format!(
        r#"      proxy_pass_request_body     off;
      proxy_set_header            Content-Length          "";
      proxy_set_header            X-Forwarded-Proto       "";
      proxy_set_header            X-Request-ID            $req_id;
      proxy_set_header            Host                    {host};
      proxy_set_header            X-Original-URL          $scheme://$http_host$request_uri;
      proxy_set_header            X-Original-Method       $request_method;
      proxy_set_header            X-Sent-From             "nginx-ingress-controller";
      proxy_set_header            X-Real-IP               $remote_addr;
      proxy_set_header            X-Forwarded-For         $remote_addr;
      proxy_set_header            X-Auth-Request-Redirect $request_uri;
      proxy_buffering             off;
"#
    )
}

/// The lines ingress-nginx renders into a protected location: the auth subrequest to
/// `auth_location`, the `Set-Cookie` of its answer passed to the client whatever the app
/// answers (`always`: the manifests' `auth-always-set-cookie: "true"`), and each header of
/// `auth-response-headers` (`names`) copied from the auth answer onto the request to the app;
/// indented for a location block.
pub fn protected_location(auth_location: &str, names: &[&str]) -> String {
    use std::fmt::Write as _;
    let mut s = format!(
        "      auth_request        {auth_location};\n      auth_request_set    $auth_cookie $upstream_http_set_cookie;\n      add_header          Set-Cookie $auth_cookie always;\n"
    );
    for (i, name) in names.iter().enumerate() {
        let var = name.to_ascii_lowercase().replace('-', "_");
        let _ = write!(
            s,
            "      auth_request_set    $authHeader{i} $upstream_http_{var};\n      proxy_set_header    '{name}' $authHeader{i};\n"
        );
    }
    s
}
