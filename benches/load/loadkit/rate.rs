//! A constant-rate HTTP/1.1 load generator (wrk2's model) for latency at a fixed request rate.
//!
//! Each of `connections` threads owns one keep-alive connection and sends on its own fixed
//! schedule (`rate / connections` per second, start times staggered). Latency is measured from
//! the moment the request was due when the server made it late (the previous answer on that
//! connection arrived after the due time: coordinated omission is counted against the server),
//! and from the actual send otherwise (so the client's own timer slack is not). Raw sockets and
//! pre-built request bytes keep the client's cost per request to two syscalls.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RateResult {
    /// Requests per second asked for.
    pub(crate) target_rps: u32,
    /// Requests per second achieved.
    pub(crate) achieved_rps: f64,
    /// Responses received.
    pub(crate) responses: u64,
    /// Responses with another status than expected, and I/O errors.
    pub(crate) errors: u64,
    /// Latency percentiles and maximum, microseconds.
    pub(crate) p50_us: u64,
    pub(crate) p90_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) p999_us: u64,
    pub(crate) max_us: u64,
}

/// One rate-limited run.
#[derive(Debug, Clone)]
pub(crate) struct RatePlan {
    pub(crate) addr: SocketAddr,
    /// Path and query.
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) rate: u32,
    pub(crate) connections: u32,
    pub(crate) duration: Duration,
    /// At the start, requests sent but not counted (connection set-up, first use).
    pub(crate) warmup: Duration,
    /// The status every response must have.
    pub(crate) expect_status: u16,
}

/// Reads one response; returns its status.
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &buf[header_end..];
        let complete = if chunked {
            body.ends_with(b"0\r\n\r\n")
        } else {
            body.len() >= length
        };
        if complete {
            return Ok(status);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Runs the plan; every connection thread reports its latencies, merged at the end.
pub(crate) fn run(plan: &RatePlan) -> Result<RateResult, String> {
    let mut request = format!("GET {} HTTP/1.1\r\n", plan.path);
    for (k, v) in &plan.headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let request = request.into_bytes();
    let period = Duration::from_secs_f64(f64::from(plan.connections) / f64::from(plan.rate));
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let mut handles = Vec::new();
    for c in 0..plan.connections {
        let request = request.clone();
        let plan = plan.clone();
        let offset = period.mul_f64(f64::from(c) / f64::from(plan.connections));
        handles.push(std::thread::spawn(move || {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut stream = TcpStream::connect(plan.addr).map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let mut buf = Vec::with_capacity(8192);
            let mut due = start + offset;
            let mut last_done = Instant::now();
            while due < end {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let sent = Instant::now();
                let origin = if last_done > due { due } else { sent };
                let status = stream
                    .write_all(&request)
                    .and_then(|()| read_response(&mut stream, &mut buf));
                let done = Instant::now();
                last_done = done;
                match status {
                    Ok(s) if s == plan.expect_status => {}
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        stream = TcpStream::connect(plan.addr).map_err(|e| e.to_string())?;
                        stream.set_nodelay(true).map_err(|e| e.to_string())?;
                    }
                }
                if due >= measure_from {
                    latencies.push((done - origin).as_micros() as u64);
                }
                due += period;
            }
            Ok::<_, String>((latencies, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().map_err(|_| "a client thread panicked")??;
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    let pct = |p: f64| -> u64 {
        if all.is_empty() {
            return 0;
        }
        let i = ((p / 100.0) * (all.len() as f64 - 1.0)).round() as usize;
        all[i.min(all.len() - 1)]
    };
    Ok(RateResult {
        target_rps: plan.rate,
        achieved_rps: all.len() as f64 / plan.duration.as_secs_f64(),
        responses: all.len() as u64,
        errors,
        p50_us: pct(50.0),
        p90_us: pct(90.0),
        p99_us: pct(99.0),
        p999_us: pct(99.9),
        max_us: all.last().copied().unwrap_or(0),
    })
}
