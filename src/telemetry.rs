//! Logging: `tracing` with structured fields, initialised once by the binary.
//!
//! Owns the subscriber setup. `RUST_LOG` filters by target and level (`info` by default; e.g.
//! `authgate=debug,info`); `AUTHGATE_LOG_FORMAT=json` switches to one JSON object per line.
//!
//! The filter is `tracing_subscriber`'s `Targets` rather than `EnvFilter`: the same
//! `target=level` directives without span-field matching, and without the regex engine that
//! would add about half a megabyte to the binary.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber; later calls are ignored.
pub fn init() {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
    let json = std::env::var("AUTHGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
    // Colour only on a terminal: container logs stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(fmt.json()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
}

/// The filter `RUST_LOG` asks for; `info` when unset, and `info` with a warning on stderr when
/// it does not parse (the subscriber is not up yet to log it).
fn filter(rust_log: Option<&str>) -> Targets {
    let default = Targets::new().with_default(LevelFilter::INFO);
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => default,
        Some(v) => Targets::from_str(v).unwrap_or_else(|e| {
            eprintln!("RUST_LOG={v:?} is not a valid filter ({e}); logging at info. Use target=level pairs, e.g. authgate=debug,info");
            default
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_directives_and_fallbacks() {
        let f = filter(Some("authgate=debug,info"));
        assert!(f.would_enable("authgate::http", &Level::DEBUG));
        assert!(!f.would_enable("hyper", &Level::DEBUG));
        assert!(f.would_enable("hyper", &Level::INFO));
        for unset in [
            None,
            Some(""),
            Some("not a filter=="),
            Some("authgate=loud"),
        ] {
            let f = filter(unset);
            assert!(f.would_enable("authgate", &Level::INFO), "{unset:?}");
            assert!(!f.would_enable("authgate", &Level::DEBUG), "{unset:?}");
        }
    }
}
