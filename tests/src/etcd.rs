//! A real etcd cluster for the fleet tests: Debian's `etcd` (3.4) members on loopback ports
//! with their data on disk under a test directory, members that can be killed (SIGKILL) and
//! restarted, the leader found through `etcdctl`, and the `rpm-ostree-fleetlock` server
//! replicas in front of it. Everything is killed on drop: a cluster never outlives its test.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::HarnessError;
use crate::process::free_port;

/// How long a new cluster may take to accept writes.
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// A running etcd cluster.
#[derive(Debug)]
pub struct EtcdCluster {
    dir: PathBuf,
    members: Vec<Member>,
    token: String,
}

impl EtcdCluster {
    /// Starts `n` members storing under `dir` and waits until the cluster accepts writes.
    pub fn start(dir: &Path, n: usize) -> Result<Self, HarnessError> {
        fs::create_dir_all(dir).map_err(|e| HarnessError::io("creating", dir, e))?;
        let mut members = Vec::new();
        for i in 0..n {
            members.push(Member {
                name: format!("m{i}"),
                client: free_port()?,
                peer: free_port()?,
                child: None,
            });
        }
        let mut cluster = Self {
            dir: dir.to_owned(),
            members,
            token: format!("rpmostree-tests-{}-{}", std::process::id(), dir.display()),
        };
        for i in 0..n {
            cluster.spawn(i, "new")?;
        }
        cluster.wait_writable(START_TIMEOUT)?;
        Ok(cluster)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize, state: &str) -> Result<(), HarnessError> {
        let initial = self.initial_cluster();
        let m = &self.members[i];
        let log = self.dir.join(format!("{}.log", m.name));
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| HarnessError::io("opening", &log, e))?;
        let err = out
            .try_clone()
            .map_err(|e| HarnessError::io("opening", &log, e))?;
        let client = format!("http://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let child = Command::new("etcd")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(self.dir.join(&m.name))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", state])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| HarnessError::new(format!("starting etcd {}: {e}", m.name)))?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// The client URLs of every member (killed ones included).
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client))
            .collect()
    }

    /// `etcdctl` against the running members.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String, HarnessError> {
        let endpoints: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| format!("http://127.0.0.1:{}", m.client))
            .collect();
        crate::process::run_ok(
            Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .arg(format!("--endpoints={}", endpoints.join(",")))
                .args(["--command-timeout=5s", "--dial-timeout=2s"])
                .args(args),
            Duration::from_secs(30),
        )
    }

    /// Waits until a write succeeds.
    pub fn wait_writable(&self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.etcdctl(&["put", "rpmostree-tests/health", "ok"]) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context("the etcd cluster did not accept writes"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The index of the current leader, if the members agree on one.
    pub fn leader(&self) -> Option<usize> {
        let text = self
            .etcdctl(&["endpoint", "status", "--write-out=json"])
            .ok()?;
        let statuses: serde_json::Value = serde_json::from_str(&text).ok()?;
        let list = statuses.as_array()?;
        let leader = list.first()?["Status"]["leader"].as_u64()?;
        let endpoint = list
            .iter()
            .find(|s| s["Status"]["header"]["member_id"].as_u64() == Some(leader))?["Endpoint"]
            .as_str()?
            .to_owned();
        self.members
            .iter()
            .position(|m| endpoint.ends_with(&format!(":{}", m.client)))
    }

    /// Kills member `i` (SIGKILL) and waits for it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts member `i` with its data.
    pub fn restart(&mut self, i: usize) -> Result<(), HarnessError> {
        self.kill(i);
        self.spawn(i, "existing")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// A `rpm-ostree-fleetlock serve` process on a loopback port; killed on drop.
#[derive(Debug)]
pub struct FleetLockServer {
    child: Option<Child>,
    address: SocketAddr,
    status: SocketAddr,
    config: PathBuf,
}

impl FleetLockServer {
    /// Starts the server binary `bin` with a configuration (written to `dir`) for the etcd
    /// `endpoints` and `groups` (name, slots), plus `extra` lines in `[lock]`.
    pub fn start(
        bin: &Path,
        dir: &Path,
        endpoints: &[String],
        groups: &[(&str, u64)],
        extra_lock: &str,
    ) -> Result<Self, HarnessError> {
        fs::create_dir_all(dir).map_err(|e| HarnessError::io("creating", dir, e))?;
        let port = free_port()?;
        let status_port = free_port()?;
        let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
        let mut text = format!(
            "[service]\naddress = \"127.0.0.1\"\nport = {port}\ntls = false\n\n\
             [status]\nenabled = true\naddress = \"127.0.0.1\"\nport = {status_port}\ntls = false\n\n\
             [etcd3]\nendpoints = [{}]\ntransaction_timeout_ms = 1500\n\n\
             [lock]\ndefault_group_name = \"default\"\ndefault_slots = 1\n{extra_lock}\n",
            eps.join(", ")
        );
        for (name, slots) in groups {
            text.push_str(&format!(
                "\n[[lock.groups]]\nname = \"{name}\"\nslots = {slots}\n"
            ));
        }
        let config = dir.join("config.toml");
        fs::write(&config, text).map_err(|e| HarnessError::io("writing", &config, e))?;
        let log = dir.join("server.log");
        let out = fs::File::create(&log).map_err(|e| HarnessError::io("creating", &log, e))?;
        let err = out
            .try_clone()
            .map_err(|e| HarnessError::io("opening", &log, e))?;
        let child = Command::new(bin)
            .args(["serve", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| HarnessError::new(format!("starting {}: {e}", bin.display())))?;
        let mut server = Self {
            child: Some(child),
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            status: SocketAddr::from((Ipv4Addr::LOCALHOST, status_port)),
            config,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&server.address, Duration::from_millis(200)).is_err() {
            let exited = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                server.kill();
                return Err(HarnessError::new(format!(
                    "the FleetLock server did not start: {}",
                    fs::read_to_string(&log).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// The base URL clients use (`http://127.0.0.1:PORT/`).
    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// The metrics URL's address.
    pub fn status_address(&self) -> SocketAddr {
        self.status
    }

    /// The configuration file it was started with.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for FleetLockServer {
    fn drop(&mut self) {
        self.kill();
    }
}
