//! Bootable container images for the tests: fixture commits encapsulated as OCI images with
//! `ostree-ext` (as a build system makes them), derived images with an extra layer on top,
//! a loopback registry (Debian's `docker-registry`) the harness starts and stops, and a
//! throttling TCP proxy in front of it, so that a test can cut a pull off in the middle.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ostree_ext::container::{Config, ImageReference, Transport};
use ostree_ext::oci_spec::image::{ImageConfiguration, Platform};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::background::{Background, runtime};
use crate::error::HarnessError;
use crate::process::free_port;
use crate::sandbox::Sandbox;

/// The branch of the remote repository that image commits go to.
const IMAGE_BRANCH: &str = "testos/image";
/// How long the registry may take to answer after it starts.
const REGISTRY_START_TIMEOUT: Duration = Duration::from_secs(30);

fn oci_error(what: &str) -> impl Fn(ocidir::Error) -> HarnessError + '_ {
    move |e| HarnessError::new(format!("{what}: {e}"))
}

impl Sandbox {
    /// The OCI image layout directory of the sandbox's images (`DIR/images/testos`).
    pub fn oci_dir(&self) -> PathBuf {
        self.dir().join("images").join("testos")
    }

    /// The `oci:` image reference of `tag` in [`Sandbox::oci_dir`], as the daemon takes it.
    pub fn oci_image_ref(&self, tag: &str) -> String {
        format!(
            "ostree-unverified-image:oci:{}:{tag}",
            self.oci_dir().display()
        )
    }

    /// Makes a commit of the fake OS `version` (on the remote's `testos/image` branch) and
    /// encapsulates it as a bootable image tagged `tag` in [`Sandbox::oci_dir`] (a tag that
    /// exists is moved). Returns the manifest digest.
    pub fn build_image(&self, version: &str, tag: &str) -> Result<String, HarnessError> {
        let checksum = self.commit(IMAGE_BRANCH, version)?;
        self.encapsulate(self.remote_repo(), &checksum, tag)
            .map_err(|e| e.context(format!("the image of {version}")))
    }

    /// Encapsulates commit `rev` of the repository `repo` as a bootable image tagged `tag` in
    /// [`Sandbox::oci_dir`] (a tag that exists is moved), as a build system would. Returns the
    /// manifest digest.
    pub fn encapsulate(&self, repo: &Path, rev: &str, tag: &str) -> Result<String, HarnessError> {
        let dir = self.oci_dir();
        fs::create_dir_all(&dir).map_err(|e| HarnessError::io("creating", &dir, e))?;
        let repo = ostree_ext::ostree::Repo::new_for_path(repo);
        repo.open(ostree_ext::gio::Cancellable::NONE)
            .map_err(|e| HarnessError::new(format!("opening the repository: {e}")))?;
        let labels: BTreeMap<String, String> = [
            ("ostree.bootable", "true"),
            ("containers.bootc", "1"),
            ("com.coreos.stream", "testing"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = Config {
            labels: Some(labels),
            cmd: None,
        };
        let dest = ImageReference {
            transport: Transport::OciDir,
            name: format!("{}:{tag}", dir.display()),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HarnessError::new(format!("building a runtime: {e}")))?;
        let digest = rt
            .block_on(ostree_ext::container::encapsulate(
                &repo, rev, &config, None, &dest,
            ))
            .map_err(|e| HarnessError::new(format!("encapsulating {rev} as {tag}: {e:#}")))?;
        Ok(digest.to_string())
    }

    /// Makes image `tag` from image `base_tag` of [`Sandbox::oci_dir`] plus one layer holding
    /// `files` (paths relative to `/`, e.g. `usr/share/derived/marker`). Returns the manifest
    /// digest.
    pub fn derive_image(
        &self,
        base_tag: &str,
        tag: &str,
        files: &[(&str, &[u8])],
    ) -> Result<String, HarnessError> {
        use ocidir::cap_std::{ambient_authority, fs::Dir};
        let path = self.oci_dir();
        let dir = Dir::open_ambient_dir(&path, ambient_authority())
            .map_err(|e| HarnessError::io("opening", &path, e))?;
        let oci = ocidir::OciDir::open(&dir).map_err(oci_error("opening the image layout"))?;
        let mut manifest = oci
            .find_manifest_with_tag(base_tag)
            .map_err(oci_error("reading the base manifest"))?
            .ok_or_else(|| HarnessError::new(format!("no image tagged {base_tag}")))?;
        let mut config: ImageConfiguration = oci
            .read_json_blob(manifest.config())
            .map_err(oci_error("reading the base configuration"))?;
        let mut layer = oci
            .create_layer(None)
            .map_err(oci_error("creating a layer"))?;
        let mut dirs = std::collections::BTreeSet::new();
        for (name, _) in files {
            let mut parent = Path::new(name).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                dirs.insert(p.to_path_buf());
                parent = p.parent();
            }
        }
        let io = |e: std::io::Error| HarnessError::new(format!("writing the layer: {e}"));
        for d in &dirs {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            layer.append_data(&mut h, d, std::io::empty()).map_err(io)?;
        }
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            layer.append_data(&mut h, name, *data).map_err(io)?;
        }
        let layer = layer
            .into_inner()
            .map_err(io)?
            .complete()
            .map_err(oci_error("completing the layer"))?;
        oci.push_layer(&mut manifest, &mut config, layer, "derived layer", None);
        let descriptor = oci
            .insert_manifest_and_config(manifest, config, Some(tag), Platform::default())
            .map_err(oci_error("writing the derived image"))?;
        Ok(descriptor.digest().to_string())
    }

    /// An image `testos:big` in `registry` (image `stable` of [`Sandbox::oci_dir`] plus a layer
    /// of `bytes` incompressible bytes) reached through a [`ThrottledProxy`] passing on `rate`
    /// bytes per second, which the daemon trusts: (the proxy, the image reference through it,
    /// the manifest digest). A test can slow a pull down, count its bytes, and cut it off.
    pub fn big_image_behind_proxy(
        &self,
        registry: &Registry,
        bytes: usize,
        rate: u64,
    ) -> Result<(ThrottledProxy, String, String), HarnessError> {
        let big = incompressible_bytes(bytes);
        self.derive_image("stable", "big", &[("usr/share/big/blob", &big)])?;
        let digest = registry.push(&self.oci_dir(), "big", "testos:big")?;
        let proxy = ThrottledProxy::start(registry.socket_address(), rate)?;
        self.trust_registry(&proxy.address())?;
        let image = format!("ostree-unverified-registry:{}/testos:big", proxy.address());
        Ok((proxy, image, digest))
    }

    /// Lets the daemon's image pulls use the plain-HTTP registry at `address` (a drop-in in
    /// the sandbox's `registries.conf.d`, which the daemon sees in place of the host's when
    /// the sandbox was started with [`crate::SandboxOptions::containers`]).
    pub fn trust_registry(&self, address: &str) -> Result<(), HarnessError> {
        let dir = self.registries_conf_dir();
        fs::create_dir_all(&dir).map_err(|e| HarnessError::io("creating", &dir, e))?;
        let file = dir.join("50-rpmostree-tests.conf");
        let text = format!("[[registry]]\nlocation = \"{address}\"\ninsecure = true\n");
        fs::write(&file, text).map_err(|e| HarnessError::io("writing", &file, e))
    }

    /// The directory the daemon sees as `/etc/containers/registries.conf.d`.
    pub(crate) fn registries_conf_dir(&self) -> PathBuf {
        self.dir().join("containers").join("registries.conf.d")
    }
}

/// `len` bytes that gzip cannot shrink (xorshift64 from a fixed seed), for layers that must
/// stay big on the wire.
pub fn incompressible_bytes(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Whether an HTTP server answers `GET /v2/` at `address`.
fn registry_answers(address: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// Debian's `docker-registry` (distribution 2.8) on a loopback port, storing under a directory
/// of its own; stopped on drop.
#[derive(Debug)]
pub struct Registry {
    child: Option<Child>,
    address: SocketAddr,
    dir: PathBuf,
}

impl Registry {
    /// Starts a registry storing under `dir` (created) and waits until it answers.
    pub fn start(dir: &Path) -> Result<Self, HarnessError> {
        fs::create_dir_all(dir).map_err(|e| HarnessError::io("creating", dir, e))?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let config = dir.join("config.yml");
        let text = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
            dir.join("data").display()
        );
        fs::write(&config, text).map_err(|e| HarnessError::io("writing", &config, e))?;
        let log = dir.join("registry.log");
        let log_file = fs::File::create(&log).map_err(|e| HarnessError::io("creating", &log, e))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| HarnessError::io("opening", &log, e))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| HarnessError::new(format!("starting docker-registry: {e}")))?;
        let mut registry = Self {
            child: Some(child),
            address,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + REGISTRY_START_TIMEOUT;
        while !registry_answers(address) {
            let exited = registry
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let text = fs::read_to_string(&log).unwrap_or_default();
                registry.stop();
                return Err(HarnessError::new(format!(
                    "docker-registry did not start on {address}: {text}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// The socket address.
    pub fn socket_address(&self) -> SocketAddr {
        self.address
    }

    /// The directory the registry stores blobs under (`DIR/data`).
    pub fn storage(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Copies image `tag` of the OCI layout `oci_dir` to `dest` (`NAME:TAG`) of this registry
    /// with skopeo; returns the digest the registry reports for it.
    pub fn push(&self, oci_dir: &Path, tag: &str, dest: &str) -> Result<String, HarnessError> {
        let src = format!("oci:{}:{tag}", oci_dir.display());
        let (name, dest_tag) = dest
            .rsplit_once(':')
            .ok_or_else(|| HarnessError::new(format!("{dest}: expected NAME:TAG")))?;
        let dest = format!("docker://{}/{dest}", self.address);
        skopeo(&[
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &src,
            &dest,
        ])?;
        self.digest(name, dest_tag)
    }

    /// The manifest digest of `NAME:TAG` as `skopeo inspect` reports it.
    pub fn digest(&self, name: &str, tag: &str) -> Result<String, HarnessError> {
        let out = skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{}/{name}:{tag}", self.address),
        ])?;
        Ok(out.trim().to_owned())
    }

    /// Stops the registry (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs skopeo (at most 5 minutes); stdout on success.
pub(crate) fn skopeo(args: &[&str]) -> Result<String, HarnessError> {
    crate::process::run_ok(Command::new("skopeo").args(args), Duration::from_secs(300))
}

/// A TCP proxy on loopback in front of another server, whose answers it passes on at a limited
/// rate, counting the bytes; [`ThrottledProxy::stop`] cuts every connection at once, as a
/// server that goes away does.
#[derive(Debug)]
pub struct ThrottledProxy {
    service: Background,
    address: SocketAddr,
    bytes: Arc<AtomicU64>,
}

impl ThrottledProxy {
    /// Starts a proxy to `upstream` passing on at most `bytes_per_second` per connection.
    pub fn start(upstream: SocketAddr, bytes_per_second: u64) -> Result<Self, HarnessError> {
        let port = free_port()?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let bytes = Arc::new(AtomicU64::new(0));
        let counter = bytes.clone();
        let service = Background::start(
            "throttled-proxy",
            "the throttled proxy",
            move |ready, stop| {
                let Some(rt) = runtime(&ready) else { return };
                rt.block_on(async move {
                    let listener = match TcpListener::bind(address).await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready
                                .send(Err(HarnessError::new(format!("binding {address}: {e}"))));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    let accept = async {
                        while let Ok((client, _)) = listener.accept().await {
                            let counter = counter.clone();
                            tokio::spawn(async move {
                                let _ = forward(client, upstream, bytes_per_second, counter).await;
                            });
                        }
                    };
                    tokio::select! {
                        () = accept => {}
                        _ = stop => {}
                    }
                });
                // Dropping the runtime drops every connection's task and closes its sockets.
                drop(rt);
            },
        )?;
        Ok(Self {
            service,
            address,
            bytes,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Bytes passed on from the server so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Closes the listener and every connection.
    pub fn stop(&mut self) {
        self.service.stop();
    }
}

/// Forwards one connection: requests as they come, answers at `rate` bytes per second.
async fn forward(
    mut client: tokio::net::TcpStream,
    upstream: SocketAddr,
    rate: u64,
    counter: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let server = tokio::net::TcpStream::connect(upstream).await?;
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = tokio::io::split(server);
    let up = tokio::io::copy(&mut client_read, &mut server_write);
    let down = async {
        let mut buf = vec![0u8; 4096];
        loop {
            let n = server_read.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            client_write.write_all(&buf[..n]).await?;
            counter.fetch_add(n as u64, Ordering::Relaxed);
            let pause = Duration::from_secs_f64(n as f64 / rate.max(1) as f64);
            tokio::time::sleep(pause).await;
        }
    };
    tokio::select! {
        r = up => r.map(|_| ()),
        r = down => r,
    }
}
