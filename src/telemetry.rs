//! Logging: `tracing` with structured fields, initialised once by the binary.
//!
//! Owns the subscriber setup. `RUST_LOG` filters (default `info`); `AUTHGATE_LOG_FORMAT=json`
//! switches to one JSON object per line.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; later calls are ignored.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AUTHGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
    // Colour only on a terminal: container logs stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
