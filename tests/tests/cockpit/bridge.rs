//! A small driver for the real `cockpit-bridge` on its stdin/stdout: the length-prefixed
//! framing, the `init` handshake, dbus-json3 channels (open, call, watch, add-match), and a
//! property cache built from `meta`/`notify` the way cockpit.js keeps one.
//!
//! Every read has a timeout and the whole conversation has a hard deadline. Each frame sent or
//! received is kept in a transcript that failures print, with the bridge's stderr. Dropping a
//! [`Bridge`] closes its stdin (the bridge leaves on EOF) and kills it if it lingers.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// The daemon's bus name.
pub const NAME: &str = "org.projectatomic.rpmostree1";
/// The Sysroot object.
pub const SYSROOT_PATH: &str = "/org/projectatomic/rpmostree1/Sysroot";
/// The Sysroot interface.
pub const SYSROOT_IFACE: &str = "org.projectatomic.rpmostree1.Sysroot";
/// The OS object of the fixture's stateroot (`testos`).
pub const OS_PATH: &str = "/org/projectatomic/rpmostree1/testos";
/// The OS interface.
pub const OS_IFACE: &str = "org.projectatomic.rpmostree1.OS";
/// The transaction interface, served on `/` of the peer-to-peer connection.
pub const TRANSACTION_IFACE: &str = "org.projectatomic.rpmostree1.Transaction";
/// The root of the daemon's object tree (where its ObjectManager lives).
pub const TREE_ROOT: &str = "/org/projectatomic/rpmostree1";

/// How long one expected message may take, unless a step says otherwise.
pub const STEP: Duration = Duration::from_secs(30);

/// One frame from the bridge: its channel (empty for the control channel) and its JSON.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The channel id; empty for control messages.
    pub channel: String,
    /// The message.
    pub message: Value,
}

impl Frame {
    /// Whether this is a control message with `command` about `channel`.
    pub fn is_control(&self, command: &str, channel: &str) -> bool {
        self.channel.is_empty()
            && self.message["command"] == command
            && self.message["channel"] == channel
    }
}

/// What the bridge told one channel about objects (merged `notify`) and interfaces (`meta`).
#[derive(Debug, Default)]
pub struct Cache {
    /// Interface name -> its `meta` description.
    pub meta: BTreeMap<String, Value>,
    /// Path -> interface -> property -> value, as merged from every `notify`.
    pub objects: BTreeMap<String, BTreeMap<String, Map<String, Value>>>,
    /// Every (path, interface) that a `notify` reported as removed (`null`).
    pub removed: Vec<(String, String)>,
}

impl Cache {
    /// The cached properties of `iface` on `path`.
    pub fn props(&self, path: &str, iface: &str) -> Option<&Map<String, Value>> {
        self.objects.get(path)?.get(iface)
    }

    fn apply(&mut self, message: &Value) {
        if let Some(meta) = message["meta"].as_object() {
            for (iface, description) in meta {
                self.meta.insert(iface.clone(), description.clone());
            }
        }
        let Some(notify) = message["notify"].as_object() else {
            return;
        };
        for (path, ifaces) in notify {
            let Some(ifaces) = ifaces.as_object() else {
                // A whole object reported gone.
                if let Some(old) = self.objects.remove(path) {
                    self.removed
                        .extend(old.into_keys().map(|iface| (path.clone(), iface)));
                }
                continue;
            };
            let object = self.objects.entry(path.clone()).or_default();
            for (iface, props) in ifaces {
                match props.as_object() {
                    Some(props) => {
                        let cached = object.entry(iface.clone()).or_default();
                        for (prop, value) in props {
                            cached.insert(prop.clone(), value.clone());
                        }
                    }
                    None => {
                        object.remove(iface);
                        self.removed.push((path.clone(), iface.clone()));
                    }
                }
            }
        }
    }
}

/// A D-Bus error as the bridge reports it: `{"error": [NAME, [MESSAGE...]]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The D-Bus error name.
    pub name: String,
    /// The message (the first element of the second array).
    pub message: String,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

/// The running bridge and everything said so far.
pub struct Bridge {
    child: Child,
    stdin: Option<ChildStdin>,
    frames: Receiver<Result<Frame, String>>,
    /// Frames received but not yet consumed by a wait, in arrival order.
    stash: Vec<Frame>,
    caches: BTreeMap<String, Cache>,
    transcript: Vec<String>,
    stderr: Arc<Mutex<String>>,
    deadline: Instant,
    next_cookie: u64,
    /// The `init` message the bridge sent first.
    pub init: Value,
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("pid", &self.child.id())
            .field("frames", &self.transcript.len())
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Spawns `cmd` (a `cockpit-bridge` command, as root or as the test user, with
    /// `DBUS_SYSTEM_BUS_ADDRESS` already set) with pipes, reads its `init` and answers with our
    /// own `init`. `superuser: false` in our init means "start no superuser peer": a bridge
    /// running as root serves superuser channels itself, and one running as another user has
    /// nobody to ask. Everything must be over within `hard_timeout`.
    pub fn start(mut cmd: Command, hard_timeout: Duration) -> Bridge {
        // A session bus and an ssh agent that lead nowhere: otherwise the bridge starts a
        // private session dbus-daemon and an ssh-agent of its own, and the agent can outlive
        // it. (It only logs that it cannot connect to the session bus.)
        cmd.env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/cockpit-test-session-bus",
        )
        .env("SSH_AUTH_SOCK", "/nonexistent/cockpit-test-ssh-agent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("spawning cockpit-bridge (apt-get install cockpit-bridge)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let stdin = child.stdin.take();
        let (tx, rx) = channel();
        std::thread::spawn(move || read_frames(stdout, &tx));
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let mut bridge = Bridge {
            child,
            stdin,
            frames: rx,
            stash: Vec::new(),
            caches: BTreeMap::new(),
            transcript: Vec::new(),
            stderr,
            deadline: Instant::now() + hard_timeout,
            next_cookie: 1,
            init: Value::Null,
        };
        let init = bridge.wait_for("the bridge's init", STEP, |f| {
            f.channel.is_empty() && f.message["command"] == "init"
        });
        bridge.check(
            init.message["version"] == 1,
            "the bridge speaks protocol version 1",
        );
        bridge.init = init.message;
        bridge.send(
            "",
            &json!({"command": "init", "version": 1, "host": "localhost", "superuser": false}),
        );
        bridge
    }

    /// Sends `message` on `channel` (empty: the control channel), framed as
    /// `<length>\n<channel>\n<json>`.
    pub fn send(&mut self, channel: &str, message: &Value) {
        let payload = format!("{channel}\n{message}");
        self.transcript
            .push(format!("-> {}: {message}", label(channel)));
        let frame = format!("{}\n{payload}", payload.len());
        let written = self.stdin.as_mut().map(|stdin| {
            stdin
                .write_all(frame.as_bytes())
                .and_then(|()| stdin.flush())
        });
        if !matches!(written, Some(Ok(()))) {
            self.fail(&format!("writing to the bridge failed: {written:?}"));
        }
    }

    /// Opens a dbus-json3 channel with `options` (bus, name, address, superuser, ...).
    pub fn open(&mut self, channel: &str, options: Value) {
        let mut message = json!({"command": "open", "channel": channel, "payload": "dbus-json3"});
        if let (Some(m), Value::Object(options)) = (message.as_object_mut(), options) {
            m.extend(options);
        }
        self.send("", &message);
    }

    /// Waits until `channel` is `ready`; fails with the close problem if it closes instead.
    pub fn wait_ready(&mut self, channel: &str) -> Value {
        let frame = self.wait_for(&format!("channel {channel} to be ready"), STEP, |f| {
            f.is_control("ready", channel) || f.is_control("close", channel)
        });
        if frame.message["command"] == "close" {
            self.fail(&format!(
                "channel {channel} closed instead of becoming ready: {}",
                frame.message
            ));
        }
        frame.message
    }

    /// Waits for the control `close` of `channel` and returns it.
    pub fn wait_close(&mut self, channel: &str) -> Value {
        self.wait_for(&format!("channel {channel} to close"), STEP, |f| {
            f.is_control("close", channel)
        })
        .message
    }

    /// Closes `channel` and waits for the bridge to confirm.
    pub fn close(&mut self, channel: &str) {
        self.send("", &json!({"command": "close", "channel": channel}));
        self.wait_close(channel);
    }

    fn cookie(&mut self) -> String {
        let cookie = self.next_cookie;
        self.next_cookie += 1;
        cookie.to_string()
    }

    /// Calls `iface.method` on `path` with `args` and no `"type"`, as cockpit.js does (so the
    /// bridge introspects the object for the signature when there are arguments). Returns the
    /// out-arguments, or the D-Bus error.
    pub fn call(
        &mut self,
        channel: &str,
        path: &str,
        iface: &str,
        method: &str,
        args: Value,
    ) -> Result<Vec<Value>, CallError> {
        let cookie = self.cookie();
        self.send(
            channel,
            &json!({"call": [path, iface, method, args], "id": cookie}),
        );
        let frame = self.wait_for(&format!("the answer to {method}"), STEP, |f| {
            (f.channel == channel && f.message["id"] == cookie.as_str())
                || f.is_control("close", channel)
        });
        let m = &frame.message;
        if let Some(reply) = m["reply"].as_array() {
            // `{"reply": [[OUT...]]}`; a reply without a body may come as `[null]`.
            return Ok(reply
                .first()
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default());
        }
        if let Some(error) = m["error"].as_array() {
            return Err(CallError {
                name: error
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                message: error
                    .get(1)
                    .and_then(|a| a.get(0))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            });
        }
        self.fail(&format!("{method}: unexpected answer {m}"))
    }

    /// Like [`Self::call`], failing the test on an error.
    pub fn call_ok(
        &mut self,
        channel: &str,
        path: &str,
        iface: &str,
        method: &str,
        args: Value,
    ) -> Vec<Value> {
        match self.call(channel, path, iface, method, args) {
            Ok(out) => out,
            Err(e) => self.fail(&format!("{iface}.{method} failed: {e}")),
        }
    }

    /// Sends `{"watch": spec}` and waits for its reply; the `meta` and `notify` messages that
    /// precede it land in the channel's [`Cache`].
    pub fn watch(&mut self, channel: &str, spec: Value) {
        let cookie = self.cookie();
        self.send(channel, &json!({"watch": spec, "id": cookie}));
        let frame = self.wait_for(&format!("the reply to watch {spec}"), STEP, |f| {
            (f.channel == channel && f.message["id"] == cookie.as_str())
                || f.is_control("close", channel)
        });
        if frame.message.get("reply").is_none() {
            self.fail(&format!("watch {spec} failed: {}", frame.message));
        }
    }

    /// Sends `{"add-match": rule}` (no answer is expected).
    pub fn add_match(&mut self, channel: &str, rule: Value) {
        self.send(channel, &json!({"add-match": rule}));
    }

    /// The property cache of `channel`.
    pub fn cache(&self, channel: &str) -> &Cache {
        static EMPTY: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
        self.caches
            .get(channel)
            .unwrap_or_else(|| EMPTY.get_or_init(Cache::default))
    }

    /// Reads frames (keeping them for later waits) until `check` holds for the cache of
    /// `channel`.
    pub fn wait_cache(
        &mut self,
        channel: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Cache) -> bool,
    ) {
        let end = Instant::now() + timeout;
        while !check(self.cache(channel)) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.fail(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            if let Some(frame) = self.recv(left) {
                self.stash.push(frame);
            }
        }
    }

    /// Returns the first frame (kept or new) that `matches`, keeping the others for later
    /// waits. Fails after `timeout` (or at the hard deadline).
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&Frame) -> bool,
    ) -> Frame {
        if let Some(i) = self.stash.iter().position(&matches) {
            return self.stash.remove(i);
        }
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.fail(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            if let Some(frame) = self.recv(left) {
                if matches(&frame) {
                    return frame;
                }
                self.stash.push(frame);
            }
        }
    }

    /// One frame within `timeout` (bounded by the hard deadline), or `None` on a timeout.
    /// Updates the channel caches.
    fn recv(&mut self, timeout: Duration) -> Option<Frame> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.fail("the test's hard deadline passed");
        }
        match self.frames.recv_timeout(timeout.min(left)) {
            Ok(Ok(frame)) => {
                self.transcript
                    .push(format!("<- {}: {}", label(&frame.channel), frame.message));
                if !frame.channel.is_empty() {
                    self.caches
                        .entry(frame.channel.clone())
                        .or_default()
                        .apply(&frame.message);
                }
                Some(frame)
            }
            Ok(Err(e)) => self.fail(&e),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => self.fail("the bridge's output ended"),
        }
    }

    /// Frames received so far that no wait consumed.
    pub fn unconsumed(&self) -> &[Frame] {
        &self.stash
    }

    /// Every frame sent (`->`) and received (`<-`), one per line.
    pub fn transcript(&self) -> String {
        self.transcript.join("\n")
    }

    /// What the bridge wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Fails the test with `why` unless `ok`.
    pub fn check(&self, ok: bool, why: &str) {
        if !ok {
            self.fail(why);
        }
    }

    /// Fails the test with `why`, the transcript and the bridge's stderr.
    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "{why}\n--- cockpit-bridge transcript ---\n{}\n--- cockpit-bridge stderr ---\n{}",
            self.transcript(),
            self.stderr()
        )
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Captured by the test runner: shown for a failing test, or with --nocapture.
        eprintln!(
            "--- cockpit-bridge transcript (pid {}) ---\n{}\n--- stderr ---\n{}",
            self.child.id(),
            self.transcript(),
            self.stderr()
        );
        // EOF on stdin makes the bridge leave; kill it if it has not within a few seconds.
        drop(self.stdin.take());
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn label(channel: &str) -> &str {
    if channel.is_empty() {
        "control"
    } else {
        channel
    }
}

/// Reads `<length>\n<channel>\n<json>` frames until EOF; reports the end (or a framing
/// error) as an `Err` and stops.
fn read_frames(stdout: impl Read, tx: &Sender<Result<Frame, String>>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => {
                let _ = tx.send(Err("the bridge closed its stdout".to_owned()));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(Err(format!("reading the bridge's stdout: {e}")));
                return;
            }
        }
        let Ok(len) = line.trim_end().parse::<usize>() else {
            let _ = tx.send(Err(format!("bad frame length line {line:?}")));
            return;
        };
        let mut buf = vec![0u8; len];
        if let Err(e) = reader.read_exact(&mut buf) {
            let _ = tx.send(Err(format!("reading a {len}-byte frame: {e}")));
            return;
        }
        let Some(split) = buf.iter().position(|b| *b == b'\n') else {
            let _ = tx.send(Err(format!(
                "frame without a channel line: {:?}",
                String::from_utf8_lossy(&buf)
            )));
            return;
        };
        let channel = String::from_utf8_lossy(&buf[..split]).into_owned();
        let message = match serde_json::from_slice(&buf[split + 1..]) {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(Err(format!(
                    "frame on {channel:?} is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(&buf[split + 1..])
                )));
                return;
            }
        };
        if tx.send(Ok(Frame { channel, message })).is_err() {
            return;
        }
    }
}
