//! An HTTP proxy on loopback in front of a real server, to lose an answer
//! on purpose: a request that matches [`Proxy::hold`] is forwarded and
//! answered by the server (its effect happens), but the answer is never
//! given to the client, whose connection stays open until the client goes
//! away (a `kill -9`). Everything else passes through.
//!
//! One request per connection: the request is forwarded with
//! `Connection: close` and its `Host` set to the server's, the answer is
//! read to its end and given back with `Connection: close`, so no framing
//! of keep-alive streams is needed (the client opens a new connection for
//! its next request).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The proxy; its threads live as long as the test process.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`, to use in place of the server's address.
    pub url: String,
    state: Arc<State>,
}

struct State {
    /// `host:port` of the server.
    upstream: String,
    /// `(method, path)` whose answers are held back.
    hold: Mutex<Option<(String, String)>>,
    held: AtomicUsize,
}

impl Proxy {
    /// A proxy for `upstream` (`http://host:port`, no path).
    pub fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the proxy speaks plain HTTP: {upstream}"))
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port on loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            upstream,
            hold: Mutex::new(None),
            held: AtomicUsize::new(0),
        });
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve(&s, conn) {
                        eprintln!("proxy to {}: {e}", s.upstream);
                    }
                });
            }
        });
        Proxy { url, state }
    }

    /// From now on, holds back the answers to `method` requests for `path`
    /// (with any query).
    pub fn hold(&self, method: &str, path: &str) {
        *self.state.hold.lock().unwrap() = Some((method.to_owned(), path.to_owned()));
    }

    /// From now on, passes every answer through.
    pub fn release(&self) {
        *self.state.hold.lock().unwrap() = None;
    }

    /// How many answers were held back (each after the server answered).
    pub fn held(&self) -> usize {
        self.state.held.load(Ordering::SeqCst)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request: its head (lines, without the blank line) and body.
fn read_request(conn: &mut TcpStream) -> std::io::Result<Option<(Vec<String>, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let lines: Vec<String> = head.split("\r\n").map(str::to_owned).collect();
    let mut body = buf[head_end + 4..].to_vec();
    let header = |name: &str| {
        lines.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    loop {
        let complete = if chunked {
            body.ends_with(b"0\r\n\r\n")
        } else {
            body.len() >= length
        };
        if complete {
            return Ok(Some((lines, body)));
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

/// `lines` with `Connection: close` (and `Host: host`, if given) in place
/// of theirs, as a head ending in the blank line.
fn rewrite(lines: &[String], host: Option<&str>) -> Vec<u8> {
    let mut out = lines[0].clone() + "\r\n";
    for l in &lines[1..] {
        let name = l.split(':').next().unwrap_or_default().trim();
        let drop = name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("keep-alive")
            || (host.is_some() && name.eq_ignore_ascii_case("host"));
        if !drop {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    if let Some(h) = host {
        out.push_str(&format!("Host: {h}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn serve(state: &State, mut client: TcpStream) -> std::io::Result<()> {
    let Some((lines, body)) = read_request(&mut client)? else {
        return Ok(());
    };
    let mut parts = lines[0].split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let hold = state.hold.lock().unwrap().as_ref().is_some_and(|(m, p)| {
        m == method
            && (path == p
                || path
                    .strip_prefix(p.as_str())
                    .is_some_and(|q| q.starts_with('?')))
    });
    let mut server = TcpStream::connect(&state.upstream)?;
    server.write_all(&rewrite(&lines, Some(&state.upstream)))?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    if hold {
        state.held.fetch_add(1, Ordering::SeqCst);
        // Wait for the client to go away; never answer.
        let mut sink = [0u8; 1024];
        while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
        return Ok(());
    }
    let head_end = find(&answer, b"\r\n\r\n").unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..head_end]).into_owned();
    let lines: Vec<String> = head.split("\r\n").map(str::to_owned).collect();
    client.write_all(&rewrite(&lines, None))?;
    client.write_all(answer.get(head_end + 4..).unwrap_or_default())?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
