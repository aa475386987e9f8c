//! NGINX configuration as ingress-nginx renders it, for the tests' NGINX and the load
//! benchmark's.

/// The `Host` ingress-nginx sends with the auth subrequest: the auth Service's name.
pub const SERVICE_HOST: &str = "authgate.authgate.svc.cluster.local";

/// The directives of the auth location ingress-nginx renders for the `auth-url` annotation,
/// up to `proxy_buffering` (the buffer sizes, the HTTP version, the location's own
/// `proxy_pass` and keep-alive settings follow in the caller's text), indented for a location
/// block; `host` is the `Host` sent.
pub fn auth_location_headers(host: &str) -> String {
    format!(
        r#"      proxy_pass_request_body     off;
      proxy_set_header            Content-Length          "";
      proxy_set_header            X-Forwarded-Proto       "";
      proxy_set_header            X-Request-ID            $request_id;
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
