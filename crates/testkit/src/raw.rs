//! HTTP/1.1 on raw sockets: requests written byte for byte (request forms an HTTP library never
//! writes, header values that are not text), and a blocking `GET` for readiness probes and
//! checks made outside a runtime. Every request asks for `Connection: close` and reads the
//! answer to the end.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response read off a raw socket: the status and the whole text after the status line.
#[derive(Debug)]
pub struct RawResp {
    /// Status code.
    pub status: u16,
    /// Headers and body as received.
    pub text: String,
}

/// Sends `request_line` and `headers` exactly as written (`Connection: close` added) to
/// 127.0.0.1:`port` and reads the answer: for request forms an HTTP library never writes, such
/// as an absolute-form request line next to a different `Host`.
pub async fn raw_request(port: u16, request_line: &str, headers: &[(&str, &str)]) -> RawResp {
    let mut req = format!("{request_line}\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    raw_bytes(port, req.as_bytes()).await
}

/// Sends `request` (the whole head, ending in an empty line) byte for byte: for header values
/// that are not text. Panics when no complete answer arrives within 20 s.
pub async fn raw_bytes(port: u16, request: &[u8]) -> RawResp {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("connect to port {port}: {e}"));
    s.write_all(request)
        .await
        .unwrap_or_else(|e| panic!("write to port {port}: {e}"));
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no complete answer from port {port} within 20 s; got {:?}",
                String::from_utf8_lossy(&buf)
            )
        })
        .unwrap_or_else(|e| panic!("read from port {port}: {e}"));
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    RawResp { status, text }
}

/// An answer to [`get`].
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// The status line and headers, lower-cased (so header names compare as written here).
    pub head: String,
    /// The body as received.
    pub body: String,
}

/// A blocking `GET path` to `addr` with `headers`, read to the end (10 s at most per read).
pub fn get<K: AsRef<str>, V: AsRef<str>>(
    addr: SocketAddr,
    path: &str,
    headers: &[(K, V)],
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{}: {}\r\n", k.as_ref(), v.as_ref());
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut text = String::new();
    // A read that fails after part of the answer (a slow close) still leaves an answer to judge.
    if let Err(e) = s.read_to_string(&mut text) {
        if text.is_empty() {
            return Err(e);
        }
    }
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    Ok(Answer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}
