//! Bearer JWTs for the load rows, signed with the fixture RSA key (the one mod_auth_openidc gets
//! as a certificate file), and the cached pool of never-used tokens of the cold row. Session
//! cookies come from `testkit::session` (sealed by the workspace's own codec, no login needed).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use jsonwebtoken::Algorithm;
use testkit::tokens;

pub(crate) use testkit::now;

/// One RS256 bearer token for `aud`, valid for `valid_secs`, unique by `jti`.
pub(crate) fn bearer(issuer: &str, aud: &str, jti: &str, valid_secs: u64) -> String {
    tokens::sign(
        Algorithm::RS256,
        Some(tokens::RSA_KID),
        &tokens::bearer_claims(issuer, aud, jti, now(), valid_secs),
    )
}

/// A file of `count` distinct tokens, reused across runs while every token stays valid for
/// another day (RSA signing is slow: about 1,000 tokens per second per core).
pub(crate) fn token_pool(path: &Path, issuer: &str, aud: &str, count: u64) -> Result<(), String> {
    let meta = path.with_extension("meta");
    let want = format!("{issuer} {aud} {count}");
    if let (Ok(m), Ok(f)) = (std::fs::read_to_string(&meta), std::fs::File::open(path)) {
        let mut it = m.split('\n');
        let (key, exp) = (it.next().unwrap_or(""), it.next().unwrap_or("0"));
        let lines = BufReader::new(f).lines().count() as u64;
        if key == want && lines == count && exp.parse::<u64>().unwrap_or(0) > now() + 86_400 {
            return Ok(());
        }
    }
    let valid = 30 * 86_400;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let t0 = std::time::Instant::now();
    eprintln!("loadkit: minting {count} RS256 tokens on {threads} threads (cached for next runs)");
    let chunks: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..count)
                        .step_by(threads as usize)
                        .map(|i| bearer(issuer, aud, &format!("cold-{i}"), valid))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
    );
    for token in chunks.iter().flatten() {
        writeln!(out, "{token}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    std::fs::write(&meta, format!("{want}\n{}", now() + valid)).map_err(|e| e.to_string())?;
    eprintln!("loadkit: minted in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}
