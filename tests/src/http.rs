//! A throttled static-file HTTP/1.1 server on loopback, to serve an OSTree archive repository
//! to libostree's pull (libcurl or libsoup): GET and HEAD of the files under a root
//! directory, keep-alive, several concurrent connections, and an optional per-connection
//! rate limit that a test can change while a pull runs (slow, then fast).
//!
//! ```no_run
//! use std::path::Path;
//! use rpmostree_tests::HttpServer;
//! # fn main() -> Result<(), rpmostree_tests::HarnessError> {
//! let server = HttpServer::start(Path::new("/srv/repo"), Some(64 * 1024))?;
//! // ... `ostree remote add test <server.url()>` and start a pull ...
//! server.set_rate(None);
//! println!("{} requests, {} bytes", server.requests(), server.bytes_sent());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use crate::background::{Background, Ready, Stop, runtime};
use crate::error::HarnessError;

/// How long a connection may stay idle (no request byte arriving, or the client not reading
/// what is written) before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The largest piece written at once when throttled.
const THROTTLED_CHUNK: usize = 4 * 1024;
/// The largest piece written at once when not throttled (and the file read buffer).
const UNTHROTTLED_CHUNK: usize = 64 * 1024;
/// The longest single sleep of the throttle, so that a rate change takes effect quickly.
const RATE_POLL: Duration = Duration::from_millis(100);
/// How long to wait before accepting again after `accept` failed (e.g. too many open files).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// What the server thread and the [`HttpServer`] handle share.
#[derive(Debug, Default)]
struct Shared {
    /// The rate limit in bytes per second per connection; 0 means none.
    rate: AtomicU64,
    /// Requests received (any status).
    requests: AtomicU64,
    /// Response body bytes written.
    bytes_sent: AtomicU64,
}

impl Shared {
    /// The current rate limit; 0 means none.
    fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }
}

/// A static-file HTTP/1.1 server on `127.0.0.1` (an ephemeral port), serving the files under
/// a root directory from its own thread (with its own tokio runtime, so sync and async tests
/// can both use it), optionally throttled. Dropping it stops the thread and closes every
/// connection.
///
/// It answers GET and HEAD with `200` and a `Content-Length` (no `Range` support), `404` for
/// a missing file or a directory, `403` for a path with a `..` component or one that leaves
/// the root through a symbolic link, `405` for other methods and `400` for a malformed
/// request. Connections are kept alive (HTTP/1.1 default) until the client closes them,
/// sends `Connection: close`, or stays idle for 30 s.
pub struct HttpServer {
    /// Where it listens.
    addr: SocketAddr,
    /// The directory served (canonical).
    root: PathBuf,
    /// The rate limit and the counters.
    shared: Arc<Shared>,
    /// The thread it runs on.
    background: Background,
}

impl fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .field("root", &self.root)
            .field("rate", &self.rate())
            .field("requests", &self.requests())
            .field("bytes_sent", &self.bytes_sent())
            .field("running", &self.background.running())
            .finish()
    }
}

impl HttpServer {
    /// Serves the files under `root` on `127.0.0.1` (a port the kernel picks), throttled to
    /// `bytes_per_second` per connection when that is `Some` (`Some(0)` means no limit, like
    /// `None`). Returns once the server listens.
    pub fn start(root: &Path, bytes_per_second: Option<u64>) -> Result<Self, HarnessError> {
        let what = format!("serving {} over HTTP", root.display());
        let root = root
            .canonicalize()
            .map_err(|e| HarnessError::io("resolving", root, e).context(&what))?;
        if !root.is_dir() {
            return Err(HarnessError::new(format!(
                "{what}: {} is not a directory",
                root.display()
            )));
        }
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| HarnessError::new(format!("{what}: binding 127.0.0.1:0: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::new(format!("{what}: the listening address: {e}")))?;
        listener.set_nonblocking(true).map_err(|e| {
            HarnessError::new(format!("{what}: making the listener non-blocking: {e}"))
        })?;

        let shared = Arc::new(Shared::default());
        shared
            .rate
            .store(bytes_per_second.unwrap_or(0), Ordering::Relaxed);
        let thread_shared = Arc::clone(&shared);
        let thread_root = root.clone();
        let background = Background::start("http-server", &what, move |ready, stop| {
            serve(listener, thread_root, thread_shared, ready, stop)
        })?;

        let server = Self {
            addr,
            root,
            shared,
            background,
        };
        Ok(server)
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The directory served (canonicalized).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Changes the rate limit, per connection, in bytes per second (`None` or `Some(0)`: no
    /// limit). Responses being sent follow the new rate within about 100 ms.
    pub fn set_rate(&self, bytes_per_second: Option<u64>) {
        self.shared
            .rate
            .store(bytes_per_second.unwrap_or(0), Ordering::Relaxed);
    }

    /// The current rate limit per connection, in bytes per second (`None`: no limit).
    pub fn rate(&self) -> Option<u64> {
        Some(self.shared.rate()).filter(|&r| r != 0)
    }

    /// The number of requests received so far, whatever their answer; a request counts as
    /// soon as its head has arrived, while its response may still be being sent.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// The number of response body bytes written so far (headers not included), updated as
    /// each piece is handed to the socket (so it is never behind what a client has read).
    pub fn bytes_sent(&self) -> u64 {
        self.shared.bytes_sent.load(Ordering::Relaxed)
    }
}

/// The server thread: builds a runtime, reports readiness (or the error) and accepts
/// connections until told to stop; dropping the runtime then drops every connection.
fn serve(
    listener: std::net::TcpListener,
    root: PathBuf,
    shared: Arc<Shared>,
    ready: Ready,
    mut stop: Stop,
) {
    let Some(runtime) = runtime(&ready) else {
        return;
    };
    runtime.block_on(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = ready.send(Err(HarnessError::new(format!(
                    "registering the listener: {e}"
                ))));
                return;
            }
        };
        if ready.send(Ok(())).is_err() {
            // Nobody is waiting any more.
            return;
        }
        let root = Arc::new(root);
        loop {
            tokio::select! {
                // A stop message, or the sender dropped.
                _ = &mut stop => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve_connection(
                            stream,
                            Arc::clone(&root),
                            Arc::clone(&shared),
                        ));
                    }
                    Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
                },
            }
        }
    });
    // Dropping the runtime here cancels the connection tasks and closes their sockets.
    drop(runtime);
}

/// One parsed request head.
#[derive(Debug)]
struct Request {
    /// The method, e.g. `GET`.
    method: String,
    /// The request target, e.g. `/objects/ab/cdef.filez`.
    target: String,
    /// Whether the connection is to be closed after the response.
    close: bool,
    /// The length of the request body to skip.
    content_length: u64,
}

/// What reading a request head gave.
#[derive(Debug)]
enum Head {
    /// A well-formed request.
    Request(Request),
    /// A malformed one: answer with this status and close.
    Bad(u16),
    /// The client closed the connection, went idle for too long, or failed.
    Closed,
}

/// Serves the requests of one connection, one after the other, until the client closes it,
/// asks for it to be closed, goes idle for [`IDLE_TIMEOUT`] or an error happens.
async fn serve_connection(stream: TcpStream, root: Arc<PathBuf>, shared: Arc<Shared>) {
    let mut buffer = Vec::new();
    loop {
        let request = match read_head(&stream, &mut buffer).await {
            Head::Request(request) => request,
            Head::Bad(status) => {
                shared.requests.fetch_add(1, Ordering::Relaxed);
                let _ = send_status(&stream, &shared, status, false, true).await;
                return;
            }
            Head::Closed => return,
        };
        shared.requests.fetch_add(1, Ordering::Relaxed);
        if skip_body(&stream, &mut buffer, request.content_length)
            .await
            .is_err()
        {
            return;
        }
        if respond(&stream, &root, &shared, &request).await.is_err() || request.close {
            return;
        }
    }
}

/// Answers one request.
async fn respond(
    stream: &TcpStream,
    root: &Path,
    shared: &Shared,
    request: &Request,
) -> io::Result<()> {
    let head_only = match request.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => return send_status(stream, shared, 405, false, request.close).await,
    };
    let path = match resolve(root, &request.target) {
        Ok(path) => path,
        Err(status) => return send_status(stream, shared, status, head_only, request.close).await,
    };
    let opened = std::fs::File::open(&path).and_then(|file| {
        let meta = file.metadata()?;
        Ok((file, meta))
    });
    let (mut file, length) = match opened {
        Ok((file, meta)) if meta.is_file() => (file, meta.len()),
        Ok(_) => return send_status(stream, shared, 404, head_only, request.close).await,
        Err(e) => {
            let status = match e.kind() {
                io::ErrorKind::NotFound => 404,
                io::ErrorKind::PermissionDenied => 403,
                _ => 500,
            };
            return send_status(stream, shared, status, head_only, request.close).await;
        }
    };
    let mut pacer = Pacer::new(shared);
    let head = response_head(200, length, "application/octet-stream", request.close);
    pacer.send(stream, head.as_bytes(), false).await?;
    if head_only {
        return Ok(());
    }
    let mut left = length;
    let mut block = vec![0u8; UNTHROTTLED_CHUNK];
    while left > 0 {
        let want = usize::try_from(left).map_or(block.len(), |l| l.min(block.len()));
        // A blocking read of a local file, short enough not to matter on this runtime.
        let n = file.read(&mut block[..want])?;
        if n == 0 {
            // The file shrank: the promised length cannot be sent, so the connection ends.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while being sent",
            ));
        }
        pacer.send(stream, &block[..n], true).await?;
        left = left.saturating_sub(n as u64);
    }
    Ok(())
}

/// Sends a short response with a plain-text body naming `status` (no body for HEAD).
async fn send_status(
    stream: &TcpStream,
    shared: &Shared,
    status: u16,
    head_only: bool,
    close: bool,
) -> io::Result<()> {
    let body = format!("{status} {}\n", reason(status));
    let mut response = response_head(status, body.len() as u64, "text/plain", close);
    if status == 405 {
        // Before the blank line that ends the head.
        response.truncate(response.len() - 2);
        response.push_str("Allow: GET, HEAD\r\n\r\n");
    }
    let mut pacer = Pacer::new(shared);
    pacer.send(stream, response.as_bytes(), false).await?;
    if !head_only {
        pacer.send(stream, body.as_bytes(), true).await?;
    }
    Ok(())
}

/// The status line and headers of a response, ending with the blank line.
fn response_head(status: u16, length: u64, content_type: &str, close: bool) -> String {
    let connection = if close { "close" } else { "keep-alive" };
    format!(
        "HTTP/1.1 {status} {}\r\nServer: rpmostree-tests\r\nContent-Type: {content_type}\r\n\
         Content-Length: {length}\r\nConnection: {connection}\r\n\r\n",
        reason(status)
    )
}

/// The reason phrase of the statuses this server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    }
}

/// The file a request target names under `root`, or the status to answer with: `400` for a
/// malformed target, `403` for a `..` component or a path that resolves outside `root`.
fn resolve(root: &Path, target: &str) -> Result<PathBuf, u16> {
    // The absolute form (`http://host:port/path`), which proxies get, is accepted too.
    let path = match target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    if !path.starts_with('/') {
        return Err(400);
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(path).ok_or(400u16)?;
    let decoded = String::from_utf8(decoded).map_err(|_| 400u16)?;
    if decoded.contains('\0') {
        return Err(400);
    }
    let mut file = root.to_path_buf();
    for component in decoded.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(403),
            name => file.push(name),
        }
    }
    // A symbolic link may still lead out of the root.
    match file.canonicalize() {
        Ok(real) if real.starts_with(root) => Ok(real),
        Ok(_) => Err(403),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(403),
        Err(_) => Err(404),
    }
}

/// Decodes `%XX` escapes; `None` for a `%` not followed by two hex digits.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// Reads the next request head from `stream` (after what is already in `buffer`), leaving in
/// `buffer` whatever follows it.
async fn read_head(stream: &TcpStream, buffer: &mut Vec<u8>) -> Head {
    loop {
        // Empty lines before a request line are to be ignored (RFC 9112, 2.2).
        let blank = buffer
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        buffer.drain(..blank);
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            let head: Vec<u8> = buffer.drain(..end + 4).collect();
            return parse_head(&head[..end]).map_or(Head::Bad(400), Head::Request);
        }
        if buffer.len() > MAX_HEAD {
            return Head::Bad(431);
        }
        let mut chunk = [0u8; 8192];
        match read_some(stream, &mut chunk).await {
            Ok(0) | Err(_) => return Head::Closed,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Parses a request head (without the final blank line); `None` if it is malformed.
fn parse_head(head: &[u8]) -> Option<Request> {
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || target.is_empty() {
        return None;
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return None,
    };
    let mut close = !http11;
    let mut content_length = 0u64;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // A chunked body is not skipped: answer, then close.
            close = true;
        }
    }
    Some(Request {
        method: method.to_owned(),
        target: target.to_owned(),
        close,
        content_length,
    })
}

/// Discards a request body of `length` bytes, first from `buffer`, then from `stream`.
async fn skip_body(stream: &TcpStream, buffer: &mut Vec<u8>, length: u64) -> io::Result<()> {
    let from_buffer = usize::try_from(length).map_or(buffer.len(), |l| l.min(buffer.len()));
    buffer.drain(..from_buffer);
    let mut left = length.saturating_sub(from_buffer as u64);
    let mut chunk = [0u8; 8192];
    while left > 0 {
        let want = usize::try_from(left).map_or(chunk.len(), |l| l.min(chunk.len()));
        match read_some(stream, &mut chunk[..want]).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => left = left.saturating_sub(n as u64),
        }
    }
    Ok(())
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads what is available (0 at end of stream), waiting at most [`IDLE_TIMEOUT`].
async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        tokio::time::timeout(IDLE_TIMEOUT, stream.readable())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client went idle"))??;
        match stream.try_read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Writes all of `data`, waiting at most [`IDLE_TIMEOUT`] each time the socket is full.
async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        tokio::time::timeout(IDLE_TIMEOUT, stream.writable())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading"))??;
        match stream.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes a response in pieces, sleeping so that it does not go faster than the shared rate
/// (read again before each piece and during each sleep, so a change applies at once).
struct Pacer<'a> {
    /// The rate limit and counters.
    shared: &'a Shared,
    /// The rate this window is paced at; 0 means none.
    rate: u64,
    /// When this window started.
    start: Instant,
    /// The bytes written in this window.
    sent: u64,
}

impl<'a> Pacer<'a> {
    /// A pacer whose window starts now.
    fn new(shared: &'a Shared) -> Self {
        Self {
            shared,
            rate: shared.rate(),
            start: Instant::now(),
            sent: 0,
        }
    }

    /// Starts a new window if the rate changed.
    fn refresh(&mut self) {
        let rate = self.shared.rate();
        if rate != self.rate {
            self.rate = rate;
            self.start = Instant::now();
            self.sent = 0;
        }
    }

    /// How much to write at once: up to a tenth of a second's worth when throttled.
    fn piece(&self) -> usize {
        if self.rate == 0 {
            UNTHROTTLED_CHUNK
        } else {
            usize::try_from(self.rate / 10).map_or(THROTTLED_CHUNK, |n| n.clamp(1, THROTTLED_CHUNK))
        }
    }

    /// Writes `data` at the rate; counts it in `bytes_sent` if it is `body`.
    async fn send(&mut self, stream: &TcpStream, mut data: &[u8], body: bool) -> io::Result<()> {
        while !data.is_empty() {
            self.refresh();
            let n = self.piece().min(data.len());
            // Counted before the write, so that a client that has read a body never sees a
            // smaller count; taken back if the write fails.
            if body {
                self.shared
                    .bytes_sent
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
            if let Err(e) = write_all(stream, &data[..n]).await {
                if body {
                    self.shared
                        .bytes_sent
                        .fetch_sub(n as u64, Ordering::Relaxed);
                }
                return Err(e);
            }
            data = &data[n..];
            self.sent += n as u64;
            self.pace().await;
        }
        Ok(())
    }

    /// Sleeps until the bytes sent in this window are due at its rate, in slices of at most
    /// [`RATE_POLL`], returning early if the rate changes.
    async fn pace(&mut self) {
        while self.rate != 0 {
            let nanos = u128::from(self.sent) * 1_000_000_000 / u128::from(self.rate);
            let offset = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            let now = Instant::now();
            let wait = match self.start.checked_add(offset) {
                Some(due) if due <= now => return,
                Some(due) => (due - now).min(RATE_POLL),
                None => RATE_POLL,
            };
            tokio::time::sleep(wait).await;
            if self.shared.rate() != self.rate {
                self.refresh();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream as StdStream;

    /// A temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let dir = std::env::temp_dir().join(format!(
                "rpmostree-tests-http-{name}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A response: status, headers (lower-case names), body.
    #[derive(Debug)]
    struct Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Response {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    fn connect(server: &HttpServer) -> BufReader<StdStream> {
        let stream = StdStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        BufReader::new(stream)
    }

    /// Sends one request on the connection and reads its response.
    fn request(conn: &mut BufReader<StdStream>, method: &str, path: &str, close: bool) -> Response {
        let connection = if close { "Connection: close\r\n" } else { "" };
        write!(
            conn.get_mut(),
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n{connection}\r\n"
        )
        .unwrap();
        conn.get_mut().flush().unwrap();
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if method != "HEAD" {
            let length: usize = response.header("content-length").unwrap().parse().unwrap();
            response.body = vec![0; length];
            conn.read_exact(&mut response.body).unwrap();
        }
        response
    }

    fn get(server: &HttpServer, path: &str) -> Response {
        request(&mut connect(server), "GET", path, true)
    }

    #[test]
    fn serves_files_with_keep_alive() {
        let dir = TempDir::new("keepalive");
        std::fs::create_dir_all(dir.0.join("refs/heads")).unwrap();
        std::fs::write(dir.0.join("config"), "[core]\nmode=archive-z2\n").unwrap();
        std::fs::write(dir.0.join("refs/heads/stable"), "0123abcd\n").unwrap();
        let server = HttpServer::start(&dir.0, None).unwrap();
        assert!(server.url().starts_with("http://127.0.0.1:"));
        assert_eq!(server.url(), format!("http://127.0.0.1:{}", server.port()));

        let mut conn = connect(&server);
        let first = request(&mut conn, "GET", "/config", false);
        assert_eq!(first.status, 200);
        assert_eq!(first.body, b"[core]\nmode=archive-z2\n");
        assert_eq!(first.header("connection"), Some("keep-alive"));
        let second = request(&mut conn, "GET", "/refs/heads/%73table", true);
        assert_eq!(second.status, 200);
        assert_eq!(second.body, b"0123abcd\n");
        assert_eq!(second.header("connection"), Some("close"));
        // The server closes the connection after `Connection: close`.
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());

        let head = request(&mut connect(&server), "HEAD", "/config", true);
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some("23"));

        assert_eq!(server.requests(), 3);
        assert_eq!(server.bytes_sent(), 23 + 9);
    }

    #[test]
    fn missing_forbidden_and_bad_requests() {
        let dir = TempDir::new("errors");
        std::fs::create_dir_all(dir.0.join("objects")).unwrap();
        let server = HttpServer::start(&dir.0, None).unwrap();
        assert_eq!(get(&server, "/missing").status, 404);
        assert_eq!(get(&server, "/objects").status, 404);
        for path in [
            "/../etc/passwd",
            "/objects/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/..%2fetc/passwd",
        ] {
            let status = get(&server, path).status;
            assert!(status == 403 || status == 404, "{path}: {status}");
        }
        assert_eq!(get(&server, "/bad%zzescape").status, 400);
        assert_eq!(
            request(&mut connect(&server), "POST", "/", true).status,
            405
        );
        // Errors keep the connection alive too.
        let mut conn = connect(&server);
        assert_eq!(request(&mut conn, "GET", "/missing", false).status, 404);
        assert_eq!(request(&mut conn, "GET", "/missing", true).status, 404);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_root_are_forbidden() {
        let dir = TempDir::new("symlink");
        let outside = TempDir::new("symlink-outside");
        std::fs::write(outside.0.join("secret"), "secret").unwrap();
        std::fs::create_dir_all(dir.0.join("repo")).unwrap();
        std::os::unix::fs::symlink(outside.0.join("secret"), dir.0.join("repo/link")).unwrap();
        let server = HttpServer::start(&dir.0.join("repo"), None).unwrap();
        assert_eq!(get(&server, "/link").status, 403);
    }

    #[test]
    fn throttled_and_then_fast() {
        let dir = TempDir::new("throttle");
        let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.0.join("big"), &data).unwrap();
        let server = HttpServer::start(&dir.0, Some(256 * 1024)).unwrap();
        assert_eq!(server.rate(), Some(256 * 1024));

        let started = Instant::now();
        let response = get(&server, "/big");
        let elapsed = started.elapsed();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, data);
        assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");

        // Unthrottled, the same file still arrives whole.
        server.set_rate(None);
        assert_eq!(server.rate(), None);
        let response = get(&server, "/big");
        assert_eq!(response.body, data);
        assert_eq!(server.bytes_sent(), 2 * 64 * 1024);
    }

    #[test]
    fn rate_changes_apply_to_a_response_in_progress() {
        let dir = TempDir::new("setrate");
        let data = vec![7u8; 64 * 1024];
        std::fs::write(dir.0.join("big"), &data).unwrap();
        // 64 KiB at 1 KiB/s would take a minute.
        let server = HttpServer::start(&dir.0, Some(1024)).unwrap();
        let mut conn = connect(&server);
        write!(conn.get_mut(), "GET /big HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        server.set_rate(None);
        let started = Instant::now();
        let mut head_and_body = Vec::new();
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        head_and_body.resize(data.len(), 0);
        conn.read_exact(&mut head_and_body).unwrap();
        assert_eq!(head_and_body, data);
        // At the first rate it would take about a minute more.
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn dropping_stops_the_server() {
        let dir = TempDir::new("drop");
        let server = HttpServer::start(&dir.0, None).unwrap();
        let port = server.port();
        // An idle connection does not keep the server alive.
        let _idle = StdStream::connect(("127.0.0.1", port)).unwrap();
        drop(server);
        assert!(StdStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn start_fails_on_a_missing_root() {
        let dir = TempDir::new("missing");
        let err = HttpServer::start(&dir.0.join("nope"), None).unwrap_err();
        assert!(err.message().contains("nope"), "{err}");
    }
}
