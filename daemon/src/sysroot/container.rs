//! Bootable container images ("ostree native containers") through `ostree-ext`: image
//! references as upstream parses them, pulls with per-layer progress, update checks that fetch
//! the manifest and configuration only, what a deployed image is (digest, version) read from
//! its commit, and pruning images no deployment uses.
//!
//! `ostree-ext`'s importer is async and its futures are not `Send`: every call here runs on the
//! operation's own (blocking) thread, in a single-thread runtime made for it, and gives up when
//! the transaction is cancelled.

use std::future::Future;

use anyhow::{Context, Result, anyhow, bail};
use ostree::glib;
use ostree::prelude::*;
use ostree_ext::container::store::{
    ImageImporter, ImageProxyConfig, ImportProgress, LayerProgress, LayeredImageState,
    PrepareResult,
};
use ostree_ext::container::{ImageReference, ManifestDiff, OstreeImageReference, Transport};
use ostree_ext::oci_spec::image::{ImageConfiguration, ImageManifest};

use super::ops::{CANCELLED, DownloadStats, Op};

/// The schemes of an image reference (the part before the first `:`).
const SCHEMES: [&str; 5] = [
    "ostree-unverified-image",
    "ostree-unverified-registry",
    "ostree-remote-image",
    "ostree-remote-registry",
    "ostree-image-signed",
];

/// Commit metadata of an imported image: its manifest digest, manifest and configuration
/// (JSON), as `ostree-ext` writes them on the merge commit.
const META_MANIFEST_DIGEST: &str = "ostree.manifest-digest";
const META_MANIFEST: &str = "ostree.manifest";
const META_CONFIG: &str = "ostree.container.image-config";

/// Whether `s` is meant as a container image reference (it starts with one of upstream's
/// schemes); it may still not parse.
pub(crate) fn is_image_reference(s: &str) -> bool {
    s.split_once(':')
        .is_some_and(|(scheme, _)| SCHEMES.contains(&scheme))
}

/// Parses an image reference (`ostree-unverified-registry:quay.io/x/y:tag`,
/// `ostree-unverified-image:oci:/path`, ...). Only the transports `registry`, `oci`,
/// `oci-archive` and `containers-storage` are accepted.
pub(crate) fn parse(s: &str) -> Result<OstreeImageReference> {
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("Invalid container image reference {s:?}: it contains spaces or control characters");
    }
    let r = OstreeImageReference::try_from(s)
        .map_err(|e| anyhow!("Invalid container image reference '{s}': {e}"))?;
    match r.imgref.transport {
        Transport::Registry
        | Transport::OciDir
        | Transport::OciArchive
        | Transport::ContainerStorage => {}
        other => bail!(
            "Unsupported transport '{}' in '{s}': use registry, oci, oci-archive or containers-storage",
            other.serializable_name()
        ),
    }
    if r.imgref.transport == Transport::Registry {
        let name = &r.imgref.name;
        let repository = name.split(['@', ':']).next().unwrap_or_default();
        if repository.is_empty() || name.starts_with('/') || name.contains("//") {
            bail!("Invalid container image reference '{s}': '{name}' is not an image name");
        }
    } else if !r.imgref.name.starts_with('/') && r.imgref.transport != Transport::ContainerStorage {
        bail!(
            "Invalid container image reference '{s}': the path of an {} image must be absolute",
            r.imgref.transport.serializable_name()
        );
    }
    Ok(r)
}

/// Validates a manifest digest, `sha256:` and 64 lowercase hexadecimal digits.
pub(crate) fn check_digest(digest: &str) -> Result<()> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if super::refspec::is_checksum(hex) => Ok(()),
        _ => bail!(
            "Invalid image digest '{digest}': expected sha256: and 64 lowercase hexadecimal digits"
        ),
    }
}

/// `r` pinned to the manifest `digest` (what `Deploy` of a digest pulls): its tag or digest
/// replaced. Only registry images can be named by digest.
pub(crate) fn with_digest(r: &OstreeImageReference, digest: &str) -> Result<OstreeImageReference> {
    check_digest(digest)?;
    if r.imgref.transport != Transport::Registry {
        bail!(
            "Deploying by digest needs a registry image; {} is a {} image",
            r,
            r.imgref.transport.serializable_name()
        );
    }
    let name = r.imgref.name.split('@').next().unwrap_or_default();
    // A tag follows the last `:` after the last `/` (a `:` before it is a registry port).
    let last_slash = name.rfind('/').unwrap_or(0);
    let repository = match name.rfind(':') {
        Some(colon) if colon > last_slash => &name[..colon],
        _ => name,
    };
    Ok(OstreeImageReference {
        sigverify: r.sigverify.clone(),
        imgref: ImageReference {
            transport: r.imgref.transport,
            name: format!("{repository}@{digest}"),
        },
    })
}

/// What is known of an image in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageState {
    /// The commit to deploy (`ostree-ext`'s merge commit of all layers).
    pub(crate) commit: String,
    /// The manifest digest.
    pub(crate) digest: String,
    /// The image's version label.
    pub(crate) version: Option<String>,
}

impl From<&LayeredImageState> for ImageState {
    fn from(s: &LayeredImageState) -> Self {
        Self {
            commit: s.merge_commit.clone(),
            digest: s.manifest_digest.to_string(),
            version: ostree_ext::container::version_for_config(&s.configuration).map(str::to_owned),
        }
    }
}

/// The digest and version of the image a commit was imported from, read from the commit's
/// metadata (`None` for a commit that is not an image's).
pub(crate) fn image_of_commit(meta: &glib::Variant) -> Option<(String, Option<String>)> {
    let dict = glib::VariantDict::new(Some(meta));
    let digest = dict.lookup::<String>(META_MANIFEST_DIGEST).ok().flatten()?;
    let version = dict
        .lookup::<String>(META_CONFIG)
        .ok()
        .flatten()
        .and_then(|c| serde_json::from_str::<ImageConfiguration>(&c).ok())
        .and_then(|c| ostree_ext::container::version_for_config(&c).map(str::to_owned));
    Some((digest, version))
}

/// The manifest stored in an image commit's metadata `meta` (`None` for another commit).
fn manifest_of(meta: &glib::Variant) -> Result<Option<ImageManifest>> {
    glib::VariantDict::new(Some(meta))
        .lookup::<String>(META_MANIFEST)
        .ok()
        .flatten()
        .map(|m| serde_json::from_str(&m).context("parsing the image manifest of the deployment"))
        .transpose()
}

/// The image the repository holds for `imgref` (what was last pulled for it), if any.
pub(crate) fn stored(
    repo: &ostree::Repo,
    imgref: &OstreeImageReference,
) -> Result<Option<ImageState>> {
    let state = ostree_ext::container::store::query_image(repo, &imgref.imgref)
        .with_context(|| format!("looking up {imgref} in the repository"))?;
    Ok(state.as_deref().map(ImageState::from))
}

/// The layer statistics from the image of the commit with metadata `from` to that of `to`
/// (`None` when either is not an image's commit).
pub(crate) fn layer_diff(from: &glib::Variant, to: &glib::Variant) -> Result<Option<LayerDiff>> {
    Ok(match (manifest_of(from)?, manifest_of(to)?) {
        (Some(a), Some(b)) => Some(LayerDiff::new(&a, &b)),
        _ => None,
    })
}

/// Runs `fut` to completion on this (blocking) thread in a runtime of its own, or fails with
/// [`CANCELLED`] as soon as the transaction is cancelled (dropping `fut` closes the image proxy).
fn run<T>(op: &Op<'_>, fut: impl Future<Output = Result<T>>) -> Result<T> {
    op.check_cancelled()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the image runtime")?;
    let cancellable = op.cancellable.clone();
    let local = tokio::task::LocalSet::new();
    rt.block_on(local.run_until(async move {
        let cancelled = async {
            while !cancellable.is_cancelled() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            r = fut => r,
            () = cancelled => Err(anyhow!(CANCELLED)),
        }
    }))
}

/// An importer for `pull` (the image fetched), recording what it imports under `target` (the
/// reference the origin follows).
async fn importer(
    repo: &ostree::Repo,
    pull: &OstreeImageReference,
    target: &OstreeImageReference,
) -> Result<ImageImporter> {
    let mut imp = ImageImporter::new(repo, pull, ImageProxyConfig::default())
        .await
        .with_context(|| format!("opening {pull}"))?;
    imp.require_bootable();
    if pull != target {
        imp.set_target(target);
    }
    Ok(imp)
}

/// Pulls the image `pull` into the repository, recorded as `target`, reporting each layer
/// with the bytes fetched; returns the imported image.
pub(crate) fn pull(
    op: &Op<'_>,
    repo: &ostree::Repo,
    pull: &OstreeImageReference,
    target: &OstreeImageReference,
) -> Result<ImageState> {
    let progress = op.progress.clone();
    let layers_before = layer_refs(repo)?;
    let imported = run(op, async {
        progress.message(&format!("Pulling manifest: {pull}"));
        let mut imp = importer(repo, pull, target).await?;
        let events = imp.request_progress();
        let bytes = imp.request_layer_progress();
        let prep = match imp
            .prepare()
            .await
            .with_context(|| format!("pulling {pull}"))?
        {
            PrepareResult::AlreadyPresent(state) => return Ok(ImageState::from(&*state)),
            PrepareResult::Ready(prep) => prep,
        };
        progress.message(&format!(
            "Importing: {pull} (digest: {})",
            prep.manifest_digest
        ));
        let layers: Vec<_> = prep.all_layers().collect();
        let stored = layers.iter().filter(|l| l.commit.is_some()).count();
        let needed: Vec<(String, u64)> = layers
            .iter()
            .filter(|l| l.commit.is_none())
            .map(|l| (l.layer().digest().to_string(), l.layer().size()))
            .collect();
        if stored > 0 {
            progress.message(&format!("Layers already present: {stored}"));
        }
        if !needed.is_empty() {
            let size: u64 = needed.iter().map(|(_, s)| s).sum();
            progress.message(&format!(
                "Layers needed: {} ({})",
                needed.len(),
                glib::format_size(size)
            ));
        }
        let report = report_layers(&*progress, events, bytes, needed.len());
        let (imported, ()) = tokio::join!(imp.import(prep), report);
        let state = imported.with_context(|| format!("importing {pull}"))?;
        Ok(ImageState::from(&*state))
    });
    op.progress.progress_end();
    if imported.is_err() {
        // ostree-ext records a layer before the proxy has verified the layer's digest: a
        // failed pull must not leave a layer that later pulls would trust.
        drop_new_layer_refs(repo, &layers_before);
    }
    imported
}

/// Where `ostree-ext` records the commit of each imported layer.
const LAYER_REF_PREFIX: &str = "ostree/container/blob";

fn layer_refs(repo: &ostree::Repo) -> Result<std::collections::BTreeSet<String>> {
    let refs = repo
        .list_refs_ext(
            Some(LAYER_REF_PREFIX),
            ostree::RepoListRefsExtFlags::empty(),
            ostree::gio::Cancellable::NONE,
        )
        .context("listing image layers")?;
    Ok(refs.into_keys().map(|k| k.to_string()).collect())
}

fn drop_new_layer_refs(repo: &ostree::Repo, before: &std::collections::BTreeSet<String>) {
    let Ok(now) = layer_refs(repo) else { return };
    for r in now.difference(before) {
        if let Err(e) = repo.set_ref_immediate(None, r, None, ostree::gio::Cancellable::NONE) {
            tracing::warn!("dropping layer ref {r} of a failed pull: {e}");
        }
    }
}

/// Turns the importer's layer events and byte counts into progress: a task per layer, a
/// percentage and download counters while it is fetched. Ends when the importer is done.
async fn report_layers(
    progress: &dyn super::ops::Progress,
    mut events: tokio::sync::mpsc::Receiver<ImportProgress>,
    mut bytes: tokio::sync::watch::Receiver<Option<LayerProgress>>,
    total: usize,
) {
    let started = std::time::Instant::now();
    let start_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (mut n, mut transferred, mut layer_done) = (0usize, 0u64, 0u64);
    // Updates come per read: a line goes out when the percentage moves, counters once a second.
    let (mut last_percent, mut last_stats) = (None, None::<std::time::Instant>);
    let (mut events_open, mut bytes_open) = (true, true);
    let mut current = String::new();
    while events_open || bytes_open {
        tokio::select! {
            ev = events.recv(), if events_open => match ev {
                None => events_open = false,
                Some(ev) => {
                    let (starting, desc) = match &ev {
                        ImportProgress::OstreeChunkStarted(d)
                        | ImportProgress::DerivedLayerStarted(d) => (true, d),
                        ImportProgress::OstreeChunkCompleted(d)
                        | ImportProgress::DerivedLayerCompleted(d) => (false, d),
                    };
                    if starting {
                        n += 1;
                        let digest = desc.digest().to_string();
                        let short = digest.get(..19).unwrap_or(&digest).to_owned();
                        current = format!(
                            "Fetching layer {short} ({n}/{total}, {})",
                            glib::format_size(desc.size())
                        );
                        progress.task_begin(&current);
                    } else {
                        layer_done += desc.size();
                        transferred = transferred.max(layer_done);
                        progress.task_end("done");
                    }
                }
            },
            changed = bytes.changed(), if bytes_open => {
                if changed.is_err() {
                    bytes_open = false;
                    continue;
                }
                let Some(p) = bytes.borrow_and_update().as_ref().map(|p| (p.fetched, p.total))
                else {
                    continue;
                };
                let (fetched, size) = p;
                transferred = layer_done + fetched;
                if let Some(percentage) = fetched.saturating_mul(100).checked_div(size) {
                    let percentage = percentage.min(100) as u32;
                    if last_percent != Some((n, percentage)) {
                        last_percent = Some((n, percentage));
                        progress.percent(
                            &format!(
                                "{current}: {} of {}",
                                glib::format_size(fetched),
                                glib::format_size(size)
                            ),
                            percentage,
                        );
                    }
                }
                if last_stats.is_some_and(|t| t.elapsed().as_secs() < 1) {
                    continue;
                }
                last_stats = Some(std::time::Instant::now());
                let elapsed = started.elapsed().as_secs().max(1);
                // One fetch outstanding (the layer); layers count as objects.
                progress.download(DownloadStats {
                    time: (start_secs, elapsed),
                    outstanding: (1, 0),
                    content: (n.saturating_sub(1) as u32, total as u32),
                    transfer: (transferred, transferred / elapsed),
                    ..Default::default()
                });
            }
        }
    }
}

/// Layer statistics of an update (upstream's `manifest-diff`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LayerDiff {
    /// Layers of the new image.
    pub(crate) total: u64,
    /// Their size.
    pub(crate) total_size: u64,
    /// Layers only the old image has.
    pub(crate) n_removed: u64,
    /// Their size.
    pub(crate) removed_size: u64,
    /// Layers only the new image has (what an update fetches).
    pub(crate) n_added: u64,
    /// Their size.
    pub(crate) added_size: u64,
}

impl LayerDiff {
    fn new(from: &ImageManifest, to: &ImageManifest) -> Self {
        let d = ManifestDiff::new(from, to);
        Self {
            total: d.total,
            total_size: d.total_size,
            n_removed: d.n_removed,
            removed_size: d.removed_size,
            n_added: d.n_added,
            added_size: d.added_size,
        }
    }
}

/// A newer image than the one deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageUpdate {
    /// Its manifest digest.
    pub(crate) digest: String,
    /// Its version label.
    pub(crate) version: Option<String>,
    /// Its creation time (seconds since the epoch), when the configuration says.
    pub(crate) timestamp: u64,
    /// The layer statistics against the deployed image.
    pub(crate) diff: LayerDiff,
}

/// Fetches the manifest and configuration of `imgref` (no layer) and compares them with the
/// image deployed as `deployed` (its commit). `Ok(None)`: the deployed image is the newest.
pub(crate) fn check(
    op: &Op<'_>,
    repo: &ostree::Repo,
    imgref: &OstreeImageReference,
    deployed: &str,
) -> Result<Option<ImageUpdate>> {
    let deployed_meta = super::commit_info(repo, deployed)?.2;
    let current = manifest_of(&deployed_meta)?;
    let deployed_digest = image_of_commit(&deployed_meta).map(|(d, _)| d);
    let progress = op.progress.clone();
    let (digest, manifest, config) = run(op, async {
        progress.message(&format!("Pulling manifest: {imgref}"));
        let mut imp = importer(repo, imgref, imgref).await?;
        Ok::<_, anyhow::Error>(
            match imp
                .prepare()
                .await
                .with_context(|| format!("checking {imgref}"))?
            {
                PrepareResult::AlreadyPresent(s) => {
                    (s.manifest_digest.to_string(), s.manifest, s.configuration)
                }
                PrepareResult::Ready(p) => (p.manifest_digest.to_string(), p.manifest, p.config),
            },
        )
    })?;
    if deployed_digest.as_deref() == Some(digest.as_str()) {
        return Ok(None);
    }
    let timestamp = config
        .created()
        .as_deref()
        .and_then(|c| glib::DateTime::from_iso8601(c, None).ok())
        .map_or(0, |d| d.to_unix().max(0) as u64);
    Ok(Some(ImageUpdate {
        version: ostree_ext::container::version_for_config(&config).map(str::to_owned),
        diff: current
            .as_ref()
            .map(|c| LayerDiff::new(c, &manifest))
            .unwrap_or_default(),
        digest,
        timestamp,
    }))
}

/// Removes the images no deployment follows and the layers no image uses; returns how many of
/// each went. Objects go with the repository prune that follows.
pub(crate) fn prune(sysroot: &ostree::Sysroot) -> Result<(usize, u32)> {
    let lock = ostree_ext::sysroot::SysrootLock::from_assumed_locked(sysroot);
    let images = ostree_ext::container::deploy::remove_undeployed_images(&lock)
        .context("pruning container images")?;
    let layers = ostree_ext::container::store::gc_image_layers(&sysroot.repo())
        .context("pruning container image layers")?;
    Ok((images.len(), layers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_upstream_parses_them() {
        let r = parse("ostree-unverified-registry:quay.io/fedora/fedora-coreos:stable").unwrap();
        assert_eq!(r.imgref.transport, Transport::Registry);
        assert_eq!(r.imgref.name, "quay.io/fedora/fedora-coreos:stable");
        assert_eq!(
            r.to_string(),
            "ostree-unverified-registry:quay.io/fedora/fedora-coreos:stable"
        );
        let r = parse("ostree-unverified-image:oci:/var/lib/images/os:v1").unwrap();
        assert_eq!(r.imgref.transport, Transport::OciDir);
        let r = parse("ostree-remote-image:fedora:registry:quay.io/x/y").unwrap();
        assert_eq!(
            r.sigverify,
            ostree_ext::container::SignatureSource::OstreeRemote("fedora".into())
        );
        assert!(parse("ostree-remote-registry:fedora:quay.io/x/y").is_ok());
        assert!(parse("ostree-image-signed:registry:quay.io/x/y").is_ok());
        assert!(parse("ostree-unverified-image:oci-archive:/tmp/os.tar").is_ok());
        assert!(parse("ostree-unverified-image:containers-storage:localhost/os").is_ok());
        for (bad, says) in [
            (
                "ostree-unverified-image:dir:/tmp/x",
                "Unsupported transport 'dir'",
            ),
            (
                "ostree-unverified-image:docker-archive:/tmp/x",
                "Unsupported transport",
            ),
            (
                "ostree-unverified-image:nope:/tmp/x",
                "Unknown transport 'nope'",
            ),
            (
                "ostree-unverified-image:oci:relative/path",
                "must be absolute",
            ),
            ("ostree-unverified-registry:", "Invalid empty name"),
            ("ostree-remote-image:fedora", "Missing second ':'"),
            ("ostree-unverified-registry:quay.io/x y", "spaces"),
            (
                "ostree-bogus:registry:x",
                "Invalid ostree image reference scheme",
            ),
        ] {
            let e = parse(bad).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(is_image_reference("ostree-unverified-registry:x"));
        assert!(!is_image_reference("origin:testos/stable"));
    }

    #[test]
    fn digests_replace_tags() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = parse("ostree-unverified-registry:127.0.0.1:5000/testos:v1").unwrap();
        let pinned = with_digest(&r, &d).unwrap();
        assert_eq!(pinned.imgref.name, format!("127.0.0.1:5000/testos@{d}"));
        let r = parse("ostree-unverified-registry:127.0.0.1:5000/testos").unwrap();
        assert_eq!(
            with_digest(&r, &d).unwrap().imgref.name,
            format!("127.0.0.1:5000/testos@{d}")
        );
        assert!(with_digest(&r, "sha256:xyz").is_err());
        let oci = parse("ostree-unverified-image:oci:/tmp/os").unwrap();
        assert!(
            with_digest(&oci, &d)
                .unwrap_err()
                .to_string()
                .contains("needs a registry image")
        );
    }
}
