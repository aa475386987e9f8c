//! The config loader: `config::load` on a directory holding a fuzzed `authgate.toml` and one
//! fuzzed workspace file (the input split at its first NUL byte). It answers with a config or
//! with errors, never a panic.
#![no_main]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One directory per fuzzing process, its files rewritten for every input.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("authgate-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("workspaces")).expect("config directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let (server, workspace) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let dir = dir();
    std::fs::write(dir.join(authgate::config::SERVER_FILE), server).expect("write server file");
    std::fs::write(dir.join("workspaces").join("ws.toml"), workspace)
        .expect("write workspace file");
    let env: HashMap<String, String> = HashMap::new();
    let _ = authgate::config::load(dir, &env);
});
