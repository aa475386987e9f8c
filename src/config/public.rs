//! The checks on `[[public]]` rules: each rule names exactly one path or prefix, written in
//! the one form the matcher (`crate::public`) compares with, so a rule can never be unreachable
//! or mean more than it says.

use super::raw::RawPublic;
use super::validate::Report;
use crate::public::{self, PathPattern, PublicRule};

/// Methods a rule passes when it names none: what health checks and static assets use.
const DEFAULT_METHODS: &[&str] = &["GET", "HEAD"];

/// Validates every rule, reporting `public[i].<field>`; invalid rules are left out (the
/// report then refuses the file anyway).
pub(super) fn validate(raw: Vec<RawPublic>, report: &mut Report<'_>) -> Vec<PublicRule> {
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, r)| rule(i, r, report))
        .collect()
}

fn rule(i: usize, raw: RawPublic, report: &mut Report<'_>) -> Option<PublicRule> {
    let start = report.errors.len();
    let path = match (raw.path, raw.prefix) {
        (Some(p), None) => {
            check_path(&p)
                .map_err(|e| report.error(format!("public[{i}].path"), e.to_string()))
                .ok()?;
            PathPattern::Exact(p)
        }
        (None, Some(p)) => {
            check_path(&p)
                .map_err(|e| report.error(format!("public[{i}].prefix"), e.to_string()))
                .ok()?;
            if !p.ends_with('/') {
                report.error(
                    format!("public[{i}].prefix"),
                    format!("`{p}` must end with '/' (a prefix covers whole segments: `{p}/`)"),
                );
            }
            PathPattern::Prefix(p)
        }
        (Some(_), Some(_)) => {
            report.error(
                format!("public[{i}]"),
                "has both `path` and `prefix`: one rule names one of them",
            );
            return None;
        }
        (None, None) => {
            report.error(
                format!("public[{i}]"),
                "names no `path` (one exact path) or `prefix` (every path under a directory)",
            );
            return None;
        }
    };
    let methods = raw
        .methods
        .unwrap_or_else(|| DEFAULT_METHODS.iter().map(|m| m.to_string()).collect());
    for (j, m) in methods.iter().enumerate() {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
            report.error(
                format!("public[{i}].methods[{j}]"),
                format!("`{m}` is not an upper-case HTTP method (GET, HEAD, POST…)"),
            );
        }
    }
    if methods.is_empty() && !raw.cors_preflight {
        report.error(
            format!("public[{i}].methods"),
            "is empty and cors_preflight is off: the rule would pass nothing",
        );
    }
    (report.errors.len() == start).then_some(PublicRule {
        path,
        methods,
        cors_preflight: raw.cors_preflight,
    })
}

/// A rule's path must be plain (`public::is_plain_path`), the one spelling request paths are
/// compared in: absolute, visible ASCII, no `.`/`..` segments, no `//`, no `;`, `#`, `?`, `\` or `%`.
pub(super) fn check_path(p: &str) -> Result<(), PathProblem> {
    if !p.starts_with('/') {
        return Err(PathProblem::Relative(p.into()));
    }
    if let Some(c) = p
        .chars()
        .find(|c| matches!(c, '%' | ';' | '#' | '?' | '\\'))
    {
        return Err(PathProblem::Reserved(p.into(), c));
    }
    if p.contains("//") {
        return Err(PathProblem::EmptySegment(p.into()));
    }
    if p.split('/').any(|s| s == "." || s == "..") {
        return Err(PathProblem::DotSegment(p.into()));
    }
    if !public::is_plain_path(p) {
        return Err(PathProblem::NotVisibleAscii(p.into()));
    }
    Ok(())
}

/// Why a `[[public]]` path is refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum PathProblem {
    #[error("`{0}` must start with '/'")]
    Relative(String),
    #[error("`{0}` holds `{1}`: rules are plain decoded paths, matched without query, parameters or encoding")]
    Reserved(String, char),
    #[error("`{0}` holds an empty segment (`//`)")]
    EmptySegment(String),
    #[error("`{0}` holds a `.` or `..` segment")]
    DotSegment(String),
    #[error("`{0}` holds spaces, control or non-ASCII characters")]
    NotVisibleAscii(String),
}

#[cfg(test)]
mod tests {
    use crate::config::raw::RawWorkspace;

    fn errors(public: &str) -> Vec<String> {
        let text = format!("hosts = [\"x.example.com\"]\nauth = \"none\"\n{public}");
        let raw: RawWorkspace = toml::from_str(&text).unwrap();
        let mut errors = Vec::new();
        let mut report = super::Report {
            file: "workspaces/x.toml".into(),
            source: &text,
            errors: &mut errors,
        };
        let rules = super::validate(raw.public, &mut report);
        assert!(errors.is_empty() || rules.len() < 2);
        errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.problem))
            .collect()
    }

    #[test]
    fn good_rules_load() {
        let text = "[[public]]\npath = \"/healthz\"\n[[public]]\nprefix = \"/static/\"\nmethods = [\"GET\"]\n[[public]]\nprefix = \"/\"\nmethods = []\ncors_preflight = true\n[[public]]\npath = \"/static/\"\nmethods = [\"POST\"]\n";
        assert_eq!(errors(text), Vec::<String>::new());
    }

    #[test]
    fn each_bad_rule_is_named_with_its_field() {
        for (rule, want) in [
            (
                "path = \"healthz\"",
                "public[0].path: `healthz` must start with '/'",
            ),
            (
                "path = \"/a/../admin\"",
                "public[0].path: `/a/../admin` holds a `.` or `..` segment",
            ),
            (
                "path = \"/a/.\"",
                "public[0].path: `/a/.` holds a `.` or `..` segment",
            ),
            ("path = \"/a%2fb\"", "public[0].path: `/a%2fb` holds `%`"),
            ("path = \"/a;b\"", "public[0].path: `/a;b` holds `;`"),
            ("path = \"/a#b\"", "public[0].path: `/a#b` holds `#`"),
            ("path = \"/a?b=1\"", "public[0].path: `/a?b=1` holds `?`"),
            ("path = \"/a\\\\b\"", "public[0].path: `/a\\b` holds `\\`"),
            (
                "path = \"//a\"",
                "public[0].path: `//a` holds an empty segment",
            ),
            ("path = \"/a b\"", "public[0].path: `/a b` holds spaces"),
            (
                "path = \"/café\"",
                "public[0].path: `/café` holds spaces, control or non-ASCII",
            ),
            (
                "prefix = \"/static\"",
                "public[0].prefix: `/static` must end with '/'",
            ),
            (
                "prefix = \"static/\"",
                "public[0].prefix: `static/` must start with '/'",
            ),
            (
                "path = \"/a\"\nprefix = \"/b/\"",
                "public[0]: has both `path` and `prefix`",
            ),
            ("methods = [\"GET\"]", "public[0]: names no `path`"),
            (
                "path = \"/a\"\nmethods = [\"get\"]",
                "public[0].methods[0]: `get` is not an upper-case HTTP method",
            ),
            (
                "path = \"/a\"\nmethods = []",
                "public[0].methods: is empty and cors_preflight is off",
            ),
        ] {
            let errs = errors(&format!("[[public]]\n{rule}\n"));
            assert_eq!(errs.len(), 1, "{rule}: {errs:?}");
            assert!(errs[0].starts_with(want), "{rule}: {errs:?}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = "hosts = [\"x.example.com\"]\nauth = \"none\"\n[[public]]\npath = \"/a\"\nregex = \".*\"\n";
        assert!(toml::from_str::<RawWorkspace>(text).is_err());
    }
}
