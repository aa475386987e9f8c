//! Server-rendered pages: the sign-in chooser and the error pages. No JavaScript, phone-sized.
//!
//! Owns HTML. Every dynamic value is escaped here; nothing else writes markup.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A page: a title, a message, and links.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    title: String,
    message: String,
    links: Vec<(String, String)>,
}

impl Page {
    /// An error page with an optional way back.
    pub(crate) fn error(title: &str, message: &str, action: Option<(&str, &str)>) -> Self {
        Self {
            title: title.into(),
            message: message.into(),
            links: action
                .map(|(l, h)| vec![(l.to_string(), h.to_string())])
                .unwrap_or_default(),
        }
    }

    /// The sign-in chooser: one button per provider.
    pub(crate) fn sign_in(workspace: &str, options: Vec<(String, String)>) -> Self {
        Self {
            title: "Sign in".into(),
            message: format!("Choose how to sign in to {workspace}."),
            links: options,
        }
    }
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}main{background:#fff;max-width:26rem;width:calc(100% - 2rem);padding:2rem 1.5rem;border-radius:12px;box-shadow:0 2px 12px #0002}h1{font-size:1.35rem;margin:0 0 .75rem}p{line-height:1.5;margin:0 0 1.25rem}a.button{display:block;text-align:center;padding:.8rem 1rem;margin:.5rem 0;border-radius:8px;background:#2454d6;color:#fff;text-decoration:none;font-weight:600}a.button:focus,a.button:hover{background:#1a3fa8}footer{margin-top:1.5rem;font-size:.8rem;color:#667}";

/// Renders a page with a status; never cached, never framed.
pub(crate) fn render(status: StatusCode, page: &Page) -> Response {
    let links: String = page
        .links
        .iter()
        .map(|(label, href)| {
            format!(
                "<a class=\"button\" href=\"{}\">{}</a>",
                escape(href),
                escape(label)
            )
        })
        .collect();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title><style>{STYLE}</style></head><body><main><h1>{title}</h1><p>{message}</p>{links}<footer>authgate</footer></main></body></html>",
        title = escape(&page.title),
        message = escape(&page.message),
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
