//! rpmostree-dnf against real RPMs, real rpm-md repos (file:// and a loopback HTTP server)
//! and real rpmdbs: nothing is mocked.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use rpmostree_dnf::{
    CachePolicy, Context, ContextOptions, DepsolveOptions, Overrides, Package, Resolution, evr_cmp,
    rpmdb_packages, vercmp,
};
use rpmostree_tests::rpms::{RpmSpec, UpdateAdvisory, build_rpms, create_repo, install_rpmdb};

type TestResult = Result<(), Box<dyn std::error::Error>>;

// ---------------------------------------------------------------------------------------------
// Fixtures.

/// A fresh directory per test, removed when the test passes.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "rpmostree-dnf-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("creating the test dir");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn base_specs() -> Vec<RpmSpec> {
    vec![
        RpmSpec::new("base-files", "1.0", "1").summary("The base of the test OS"),
        RpmSpec::new("libfoo", "1.0", "1"),
        RpmSpec::new("epochal", "1.0", "1").epoch(2),
    ]
}

fn libfoo2() -> RpmSpec {
    RpmSpec::new("libfoo", "2.0", "1")
}

fn bar2() -> RpmSpec {
    RpmSpec::new("bar", "2.0", "1").summary("Bar, unrelated")
}

fn repo_specs() -> Vec<RpmSpec> {
    vec![
        RpmSpec::new("libfoo", "1.0", "1"),
        libfoo2(),
        RpmSpec::new("foo-tools", "1.0", "1")
            .summary("Tools for foo widgets")
            .provides("virtual-widget = 1.0"),
        // A file dependency: libsolv only indexes file provides that something requires.
        RpmSpec::new("widget-helper", "1.0", "1")
            .summary("Helps foo widgets")
            .requires("/usr/share/libfoo/VERSION"),
        RpmSpec::new("foolish", "1.0", "1").summary("Nothing related"),
        RpmSpec::new("bar", "1.0", "1").summary("Bar, unrelated"),
        bar2(),
        RpmSpec::new("epochal", "1.0", "1").epoch(2),
    ]
}

const SECURITY_ID: &str = "TESTOS-2026-0001";
const CVE: &str = "CVE-2026-1234";

fn advisories() -> Vec<UpdateAdvisory> {
    vec![
        UpdateAdvisory {
            id: SECURITY_ID.into(),
            kind: "security".into(),
            severity: "Important".into(),
            title: "libfoo security update".into(),
            cves: vec![CVE.into()],
            packages: vec![libfoo2()],
        },
        UpdateAdvisory {
            id: "TESTOS-2026-0002".into(),
            kind: "enhancement".into(),
            severity: String::new(),
            title: "bar enhancement".into(),
            cves: vec![],
            packages: vec![bar2()],
        },
    ]
}

/// The built packages: (base rpmdb packages, repo packages), built once per test binary.
fn rpms() -> &'static (Vec<PathBuf>, Vec<PathBuf>) {
    static RPMS: OnceLock<(Vec<PathBuf>, Vec<PathBuf>)> = OnceLock::new();
    RPMS.get_or_init(|| {
        (
            build_rpms(&base_specs()).expect("building the base packages"),
            build_rpms(&repo_specs()).expect("building the repo packages"),
        )
    })
}

/// A deployment-like tree, a repos dir, caches and a repo under one temp dir.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new(name: &str) -> Self {
        let env = Self {
            dir: TempDir::new(name),
        };
        let etc = env.root().join("etc");
        fs::create_dir_all(etc.join("yum.repos.d")).expect("creating etc");
        fs::write(
            etc.join("os-release"),
            "NAME=\"Test OS\"\nID=testos\nVERSION_ID=\"42\"\n",
        )
        .expect("writing os-release");
        env
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn repos_dir(&self) -> PathBuf {
        self.root().join("etc/yum.repos.d")
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn options(&self) -> ContextOptions {
        ContextOptions {
            repos_dir: self.repos_dir(),
            source_root: self.root(),
            cache_dir: self.cache().join("repomd"),
            solv_dir: self.cache().join("solv"),
            lock_dir: self.dir.path().join("lock"),
            releasever: None,
        }
    }

    /// Builds the test repo at `<dir>/<name>` (with advisories).
    fn make_repo(&self, name: &str) -> PathBuf {
        let repo = self.dir.path().join(name);
        create_repo(&repo, &rpms().1, &advisories()).expect("creating the repo");
        repo
    }

    fn write_repo_file(&self, file: &str, text: &str) {
        fs::write(self.repos_dir().join(file), text).expect("writing a .repo file");
    }

    fn context(&self) -> Context {
        Context::new(&self.options()).expect("setting up the context")
    }
}

fn repo_section(id: &str, url: &str) -> String {
    format!("[{id}]\nname=Repo {id}\nbaseurl={url}\ngpgcheck=0\n")
}

/// A tiny static file server on 127.0.0.1 (GET and HEAD; 404 for anything missing).
struct HttpServer {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    fn serve(dir: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the test HTTP server");
        let port = listener.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (stop2, requests2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    requests2.fetch_add(1, Ordering::SeqCst);
                    let _ = Self::answer(&dir, stream);
                }
            }
        });
        Self {
            port,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    fn answer(dir: &Path, mut stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
                break;
            }
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default();
        let path = parts.next().unwrap_or("/").split('?').next().unwrap_or("/");
        let file = dir.join(path.trim_start_matches('/'));
        match fs::read(&file) {
            Ok(body) if !path.contains("..") => {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )?;
                if method != "HEAD" {
                    stream.write_all(&body)?;
                }
            }
            _ => {
                stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )?;
            }
        }
        stream.flush()
    }

    fn url(&self, sub: &str) -> String {
        format!("http://127.0.0.1:{}/{sub}", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Every path under `dir` with its size and modification time.
fn listing(dir: &Path) -> BTreeSet<(PathBuf, u64, Option<std::time::SystemTime>)> {
    fn walk(dir: &Path, out: &mut BTreeSet<(PathBuf, u64, Option<std::time::SystemTime>)>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let md = fs::symlink_metadata(e.path()).expect("metadata");
            out.insert((e.path(), md.len(), md.modified().ok()));
            if md.is_dir() {
                walk(&e.path(), out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, &mut out);
    out
}

fn names(pkgs: &[Package]) -> Vec<String> {
    pkgs.iter().map(|p| p.nevra()).collect()
}

// ---------------------------------------------------------------------------------------------
// Version comparison.

#[test]
fn vercmp_and_evr_cmp_follow_rpm() {
    use std::cmp::Ordering::*;
    assert_eq!(vercmp("1.0", "1.0.1"), Less);
    assert_eq!(vercmp("1.0~rc1", "1.0"), Less);
    assert_eq!(vercmp("1.0^git1", "1.0"), Greater);
    assert_eq!(vercmp("1.0^git1", "1.0.1"), Less);
    assert_eq!(vercmp("1.10", "1.9"), Greater);
    assert_eq!(vercmp("2.0", "2.0"), Equal);
    assert_eq!(vercmp("1.0a", "1.0"), Greater);
    assert_eq!(evr_cmp("1:1.0-1", "9.9-9"), Greater);
    assert_eq!(evr_cmp("0:1.0-1", "1.0-1"), Equal);
    assert_eq!(evr_cmp("1.0-2", "1.0-10"), Less);
    assert_eq!(evr_cmp("1.10-1", "1.9-5"), Greater);
    assert_eq!(evr_cmp("1.0~rc1-1", "1.0-1"), Less);
    assert_eq!(evr_cmp("1.0", "1.0-5"), Less);
    assert_eq!(evr_cmp("1.0-1", "1.0"), Greater);
    assert_eq!(evr_cmp("a:1.0", "1.0"), Less);
    assert_eq!(evr_cmp("", "0"), Less);
    assert_eq!(evr_cmp("2:1.0-1", "10:0.1-1"), Less);
}

/// The plain-Rust comparisons the daemon uses agree with librpm's own on tricky inputs.
#[test]
fn the_rust_comparisons_agree_with_librpm() {
    let versions = [
        "",
        "0",
        "00",
        "1",
        "1.0",
        "1.0.0",
        "1.0.1",
        "1.00",
        "1.010",
        "1.10",
        "1.9",
        "1a",
        "1.a",
        "a",
        "A",
        "1.0~rc1",
        "1.0~rc2",
        "1.0~~",
        "1.0~",
        "1.0^",
        "1.0^git1",
        "1.0^git2",
        "1.0^git1~pre",
        "1..0",
        "1_0",
        "1+0",
        "2.0b",
        "2.0beta",
        "2.0.b",
        "fc39",
        "el9_3",
        "1.0-1",
        "1:1.0",
        "0:1.0-1",
        "2:0.1-1",
        ":1.0",
        "1.0-",
        "a:1-2",
        "10.0-1.fc39",
    ];
    for a in versions {
        for b in versions {
            assert_eq!(
                rpmostree_dnf::vercmp(a, b),
                rpmostree_dnf::librpm_vercmp(a, b),
                "vercmp({a:?}, {b:?})"
            );
            assert_eq!(
                evr_cmp(a, b),
                rpmostree_dnf::librpm_evr_cmp(a, b),
                "evr_cmp({a:?}, {b:?})"
            );
        }
    }
}

/// The helper protocol answers a request read from its input with JSON lines.
#[test]
fn the_helper_protocol_answers_a_request() {
    use rpmostree_dnf::protocol::{Message, Reply, Request, serve};
    let tmp = TempDir::new("helper-protocol");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("root/etc/yum.repos.d")).unwrap();
    std::fs::write(
        dir.join("root/etc/yum.repos.d/x.repo"),
        "[x]\nname=X\nbaseurl=file:///nonexistent\n",
    )
    .unwrap();
    let request = Request::ListRepos {
        options: ContextOptions {
            repos_dir: dir.join("root/etc/yum.repos.d"),
            source_root: dir.join("root"),
            cache_dir: dir.join("cache/repomd"),
            solv_dir: dir.join("cache/solv"),
            lock_dir: dir.join("lock"),
            releasever: Some("1".into()),
        },
    };
    let input = serde_json::to_vec(&request).unwrap();
    let mut out = Vec::new();
    assert_eq!(serve(&input[..], &mut out), 0);
    let text = String::from_utf8_lossy(&out);
    let last: Message = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    match last {
        Message::Reply(Reply::Repos(repos)) => {
            assert_eq!(repos.len(), 1);
            assert_eq!(repos[0].id, "x");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// rpmdb.

#[test]
fn rpmdb_packages_reads_the_tree_and_leaves_it_untouched() -> TestResult {
    let host_db = Path::new("/usr/share/rpm");
    let host_had_db = host_db.exists();
    let env = Env::new("rpmdb");
    let root = env.root();
    install_rpmdb(&root, &rpms().0)?;
    let before = listing(&root);
    let pkgs = rpmdb_packages(&root)?;
    assert_eq!(listing(&root), before, "rpmdb_packages changed the tree");
    assert_eq!(
        names(&pkgs),
        [
            "base-files-1.0-1.noarch",
            "epochal-2:1.0-1.noarch",
            "libfoo-1.0-1.noarch"
        ]
    );
    assert!(pkgs.iter().all(|p| p.reponame == "@System"), "{pkgs:?}");
    assert_eq!(pkgs[0].summary, "The base of the test OS");
    assert_eq!(pkgs[1].epoch, 2);
    assert_eq!(pkgs[1].evr(), "2:1.0-1");
    assert_eq!(
        host_db.exists(),
        host_had_db,
        "reading a tree's rpmdb touched the host's /usr/share/rpm"
    );

    // A second read (sqlite state may differ now) still leaves nothing behind.
    assert_eq!(rpmdb_packages(&root)?, pkgs);
    assert_eq!(listing(&root), before);
    Ok(())
}

#[test]
fn rpmdb_packages_of_a_tree_without_database_is_empty() -> TestResult {
    let env = Env::new("nordb");
    let before = listing(&env.root());
    assert_eq!(rpmdb_packages(&env.root())?, []);
    assert_eq!(rpmdb_packages(&env.dir.path().join("missing"))?, []);
    assert_eq!(listing(&env.root()), before);
    // An empty database directory is no database either.
    fs::create_dir_all(env.root().join("usr/share/rpm"))?;
    assert_eq!(rpmdb_packages(&env.root())?, []);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Repos.

#[test]
fn repos_substitute_vars_and_report_flags() -> TestResult {
    let env = Env::new("repos");
    let vars = env.root().join("etc/dnf/vars");
    fs::create_dir_all(&vars)?;
    fs::write(vars.join("channel"), "stable\n")?;
    env.write_repo_file(
        "testos.repo",
        "[testos]\nname=Test OS $releasever ($channel) - $basearch\nbaseurl=file:///nonexistent/$releasever\n\n\
         [testos-source]\nname=Test OS sources\nbaseurl=file:///nonexistent/src\nenabled=0\n\n\
         [testos-debuginfo]\nname=Test OS debug\nbaseurl=file:///nonexistent/debug\nenabled=0\n",
    );
    env.write_repo_file(
        "other.repo",
        "[other]\nname=Other\nbaseurl=https://example.invalid/repo\nenabled=0\n",
    );
    // Without a releasever, libdnf looks into the source root's rpmdb (for
    // system-release(releasever)) before os-release: that must not change the tree either.
    install_rpmdb(&env.root(), &rpms().0)?;
    let before = listing(&env.root());
    let ctx = env.context();
    assert_eq!(
        listing(&env.root()),
        before,
        "Context::new changed the source root"
    );
    let mut repos = ctx.repos();
    repos.sort_by(|a, b| a.id.cmp(&b.id));
    let summary: Vec<_> = repos
        .iter()
        .map(|r| (r.id.as_str(), r.enabled, r.devel, r.source))
        .collect();
    assert_eq!(
        summary,
        [
            ("other", false, false, false),
            ("testos", true, false, false),
            ("testos-debuginfo", false, true, false),
            ("testos-source", false, false, true),
        ]
    );
    let arch = std::env::consts::ARCH;
    assert_eq!(
        repos[1].description,
        format!("Test OS 42 (stable) - {arch}")
    );

    // An explicit releasever wins over os-release.
    let mut opts = env.options();
    opts.releasever = Some("7".into());
    let ctx = Context::new(&opts)?;
    let testos = ctx.repos().into_iter().find(|r| r.id == "testos");
    assert_eq!(
        testos.map(|r| r.description),
        Some(format!("Test OS 7 (stable) - {arch}"))
    );
    Ok(())
}

#[test]
fn set_enabled_rewrites_the_repo_file() -> TestResult {
    let env = Env::new("modify");
    env.write_repo_file(
        "testos.repo",
        "# keep me\n[testos]\nname=Test OS\nbaseurl=file:///nonexistent\nenabled=0\n\n[other]\nname=Other\nbaseurl=file:///nonexistent2\n",
    );
    let ctx = env.context();
    ctx.set_enabled("testos", true)?;
    let enabled = |ctx: &Context| -> Vec<(String, bool)> {
        let mut v: Vec<_> = ctx.repos().into_iter().map(|r| (r.id, r.enabled)).collect();
        v.sort();
        v
    };
    assert_eq!(
        enabled(&ctx),
        [("other".to_owned(), true), ("testos".to_owned(), true)]
    );
    let text = fs::read_to_string(env.repos_dir().join("testos.repo"))?;
    assert!(text.contains("# keep me"), "{text}");
    assert!(text.contains("enabled=1"), "{text}");
    assert_eq!(
        enabled(&env.context()),
        [("other".to_owned(), true), ("testos".to_owned(), true)]
    );

    env.context().set_enabled("other", false)?;
    assert_eq!(
        enabled(&env.context()),
        [("other".to_owned(), false), ("testos".to_owned(), true)]
    );

    let err = ctx.set_enabled("nope", true).expect_err("unknown repo");
    assert_eq!(err.to_string(), "Yum repo 'nope' not found");
    Ok(())
}

#[test]
fn broken_repo_configuration_is_an_error_naming_it() {
    let env = Env::new("broken");
    env.write_repo_file("bad.repo", "[bad\nname=oops\n");
    let err = Context::new(&env.options()).expect_err("broken .repo file");
    let bad = env.repos_dir().join("bad.repo");
    assert!(
        err.to_string().contains(&bad.display().to_string()),
        "{err}"
    );

    // A repos "dir" that cannot be read (here: a file).
    let mut opts = env.options();
    opts.repos_dir = bad;
    let err = Context::new(&opts).expect_err("unreadable repos dir");
    assert!(err.to_string().contains("bad.repo"), "{err}");
}

#[test]
fn queries_need_loaded_metadata() {
    let env = Env::new("unloaded");
    let before = listing(&env.root());
    let ctx = env.context();
    // Without an rpmdb in the source root, releasever detection leaves no trace either.
    assert_eq!(listing(&env.root()), before);
    let err = ctx
        .packages_by_name(&["libfoo".into()])
        .expect_err("not loaded");
    assert_eq!(err.to_string(), "metadata not loaded");
    assert!(ctx.search(&["foo".into()]).is_err());
    assert!(ctx.newest("libfoo", "noarch").is_err());
    let err = ctx.search(&[]).expect_err("no terms");
    assert_eq!(err.to_string(), "Must specify a term for search");
}

// ---------------------------------------------------------------------------------------------
// Metadata refresh and the cache.

fn no_progress() -> impl FnMut(&str, u32) {
    |_: &str, _: u32| {}
}

#[test]
fn update_metadata_over_file_urls() -> TestResult {
    let env = Env::new("file");
    let repo = env.make_repo("repo");
    env.write_repo_file(
        "testos.repo",
        &format!(
            "{}\n[off]\nname=Off\nbaseurl=file:///nonexistent\nenabled=0\n",
            repo_section("testos", &format!("file://{}", repo.display()))
        ),
    );
    let mut ctx = env.context();
    let updates = ctx.update_metadata(CachePolicy::Default, &mut no_progress())?;
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].id, "testos");
    // libdnf reads file:// repos in place: nothing is ever downloaded.
    assert!(!updates[0].updated);
    assert!(updates[0].timestamp > 1_700_000_000, "{updates:?}");
    let again = ctx.update_metadata(CachePolicy::Never, &mut no_progress())?;
    assert_eq!(again, updates);

    ctx.load_cached(false)?;
    let loaded = ctx.loaded_repos();
    assert_eq!(
        loaded,
        [(
            "testos".to_owned(),
            updates[0].timestamp,
            (repo_specs().len() + advisories().len()) as u32
        )]
    );

    // A file:// repo whose directory is gone.
    env.write_repo_file(
        "gone.repo",
        &repo_section(
            "gone",
            &format!("file://{}", env.dir.path().join("missing").display()),
        ),
    );
    let mut ctx = env.context();
    let err = ctx
        .update_metadata(CachePolicy::Default, &mut no_progress())
        .expect_err("missing repo dir");
    assert!(
        err.to_string().starts_with("Updating rpm-md repo 'gone': "),
        "{err}"
    );
    let err = ctx.load_cached(false).expect_err("missing repo dir");
    assert!(err.to_string().starts_with("rpm-md repo 'gone': "), "{err}");
    Ok(())
}

#[test]
fn update_metadata_over_http_caches_and_forces() -> TestResult {
    let env = Env::new("http");
    let served = env.dir.path().join("served");
    fs::create_dir_all(&served)?;
    let repo = env.make_repo("served/testos");
    let server = HttpServer::serve(served.clone());
    env.write_repo_file(
        "testos.repo",
        &repo_section("testos-http", &server.url("testos/")),
    );
    let mut ctx = env.context();

    let err = ctx.load_cached(false).expect_err("nothing cached yet");
    assert!(
        err.to_string().starts_with(
            "rpm-md repo 'testos-http' has no cached metadata; run `rpm-ostree refresh-md`"
        ),
        "{err}"
    );
    assert_eq!(server.requests(), 0, "load_cached went to the network");

    let mut seen = Vec::new();
    let first = ctx.update_metadata(CachePolicy::Default, &mut |id: &str, pct: u32| {
        seen.push((id.to_owned(), pct))
    })?;
    assert_eq!(first.len(), 1);
    assert!(first[0].updated, "{first:?}");
    assert!(!seen.is_empty(), "no progress reported");
    assert!(
        seen.iter()
            .all(|(id, pct)| id == "testos-http" && *pct <= 100),
        "{seen:?}"
    );
    let requests = server.requests();
    assert!(requests > 0);

    let second = ctx.update_metadata(CachePolicy::Default, &mut no_progress())?;
    assert!(!second[0].updated, "{second:?}");
    assert_eq!(second[0].timestamp, first[0].timestamp);
    assert_eq!(
        server.requests(),
        requests,
        "a cached refresh went to the network"
    );

    let forced = ctx.update_metadata(CachePolicy::Never, &mut no_progress())?;
    assert!(forced[0].updated, "{forced:?}");
    assert!(server.requests() > requests);

    // Break the repo in two ways: each refresh fails naming it, and the cache stays usable.
    let repomd = repo.join("repodata/repomd.xml");
    let good = fs::read(&repomd)?;
    fs::write(&repomd, "<repomd><broken")?;
    let err = ctx
        .update_metadata(CachePolicy::Never, &mut no_progress())
        .expect_err("corrupt repomd.xml");
    assert!(
        err.to_string()
            .starts_with("Updating rpm-md repo 'testos-http': "),
        "{err}"
    );
    fs::write(&repomd, &good)?;
    fs::rename(&repo, served.join("elsewhere"))?;
    let err = ctx
        .update_metadata(CachePolicy::Never, &mut no_progress())
        .expect_err("missing repo");
    assert!(
        err.to_string()
            .starts_with("Updating rpm-md repo 'testos-http': "),
        "{err}"
    );

    // The old cache answers, with the server gone (a closed port) and a fresh context.
    drop(server);
    let mut ctx = env.context();
    ctx.load_cached(false)?;
    let pkgs = ctx.packages_by_name(&["libfoo".into()])?;
    assert_eq!(
        pkgs.iter()
            .map(|(n, p)| (n.as_str(), p.nevra()))
            .collect::<Vec<_>>(),
        [("libfoo", "libfoo-2.0-1.noarch".to_owned())]
    );
    assert_eq!(pkgs[0].1.reponame, "testos-http");
    assert_eq!(
        ctx.loaded_repos(),
        [(
            "testos-http".to_owned(),
            first[0].timestamp,
            (repo_specs().len() + advisories().len()) as u32
        )]
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Queries.

/// A context with the test repo (file://) loaded.
fn loaded(name: &str) -> Result<(Env, Context), Box<dyn std::error::Error>> {
    let env = Env::new(name);
    let repo = env.make_repo("repo");
    env.write_repo_file(
        "testos.repo",
        &repo_section("testos", &format!("file://{}", repo.display())),
    );
    let mut ctx = env.context();
    ctx.update_metadata(CachePolicy::Default, &mut no_progress())?;
    ctx.load_cached(false)?;
    Ok((env, ctx))
}

#[test]
fn packages_by_name_what_provides_and_newest() -> TestResult {
    let (_env, ctx) = loaded("queries")?;
    let found = ctx.packages_by_name(&[
        "bar".into(),
        "nothing-like-this".into(),
        "epochal".into(),
        "libfoo".into(),
    ])?;
    let found: Vec<_> = found.iter().map(|(n, p)| (n.as_str(), p.nevra())).collect();
    assert_eq!(
        found,
        [
            ("bar", "bar-2.0-1.noarch".to_owned()),
            ("epochal", "epochal-2:1.0-1.noarch".to_owned()),
            ("libfoo", "libfoo-2.0-1.noarch".to_owned()),
        ]
    );
    let epochal = &ctx.packages_by_name(&["epochal".into()])?[0].1;
    assert_eq!(
        (
            epochal.epoch,
            epochal.evr().as_str(),
            epochal.reponame.as_str()
        ),
        (2, "2:1.0-1", "testos")
    );

    let provides = ctx.what_provides(&["virtual-widget".into()])?;
    assert_eq!(names(&provides), ["foo-tools-1.0-1.noarch"]);
    assert_eq!(provides[0].summary, "Tools for foo widgets");
    assert_eq!(
        names(&ctx.what_provides(&["virtual-widget >= 1.0".into(), "libfoo".into()])?)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        ["foo-tools-1.0-1.noarch", "libfoo-2.0-1.noarch"]
            .map(String::from)
            .into()
    );
    assert_eq!(ctx.what_provides(&["virtual-widget > 1.0".into()])?, []);
    let err = ctx
        .what_provides(&["libfoo".into(), "libfoo >=".into()])
        .expect_err("unparsable reldep");
    assert!(err.to_string().contains("\"libfoo >=\""), "{err}");

    assert_eq!(
        ctx.newest("libfoo", "noarch")?.map(|p| p.nevra()),
        Some("libfoo-2.0-1.noarch".to_owned())
    );
    assert_eq!(ctx.newest("libfoo", "x86_64")?, None);
    assert_eq!(ctx.newest("nothing-like-this", "noarch")?, None);
    Ok(())
}

#[test]
fn search_groups_follow_upstream() -> TestResult {
    let (_env, ctx) = loaded("search")?;
    let search = |terms: &[&str]| -> Result<Vec<(String, String)>, rpmostree_dnf::Error> {
        let terms: Vec<String> = terms.iter().map(|t| (*t).to_owned()).collect();
        let mut found: Vec<_> = ctx
            .search(&terms)?
            .into_iter()
            .map(|(k, p)| (k, p.name))
            .collect();
        // Within a group libdnf's order is the sack's; compare as sets per group.
        found.sort();
        Ok(found)
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<_> = v
            .iter()
            .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
            .collect();
        v.sort();
        v
    };

    // One term: a = name and summary both match; b = name; c = summary.
    assert_eq!(
        search(&["foo"])?,
        pairs(&[
            ("match_group_a", "foo-tools"),
            ("match_group_a", "libfoo"),
            ("match_group_b", "foo-tools"),
            ("match_group_b", "foolish"),
            ("match_group_b", "libfoo"),
            ("match_group_c", "foo-tools"),
            ("match_group_c", "libfoo"),
            ("match_group_c", "widget-helper"),
        ])
    );
    // Case-insensitive, one entry per name (bar has two versions).
    assert_eq!(
        search(&["BAR"])?,
        pairs(&[
            ("match_group_a", "bar"),
            ("match_group_b", "bar"),
            ("match_group_c", "bar"),
        ])
    );
    // Several terms: a = every term in name or summary; b/c = every term in one field.
    assert_eq!(
        search(&["foo", "widgets"])?,
        pairs(&[
            ("match_group_a", "foo-tools"),
            ("match_group_a", "widget-helper"),
            ("match_group_c", "foo-tools"),
            ("match_group_c", "widget-helper"),
        ])
    );
    // Globs match the whole field.
    assert_eq!(search(&["lib*"])?, pairs(&[("match_group_b", "libfoo")]));
    assert_eq!(search(&["no-such-thing"])?, []);
    Ok(())
}

#[test]
fn advisories_are_security_only_and_grouped() -> TestResult {
    let (env, ctx) = loaded("advisories")?;
    let pkg = |name: &str, version: &str| Package {
        name: name.into(),
        epoch: 0,
        version: version.into(),
        release: "1".into(),
        arch: "noarch".into(),
        summary: String::new(),
        reponame: "@System".into(),
    };
    let advisories = ctx.advisories(&[
        pkg("libfoo", "2.0"),
        pkg("libfoo", "1.0"),
        pkg("bar", "2.0"),
        pkg("not-in-the-sack", "1.0"),
    ])?;
    assert_eq!(advisories.len(), 1, "{advisories:?}");
    let a = &advisories[0];
    assert_eq!(a.id, SECURITY_ID);
    assert_eq!(a.kind, 1);
    assert_eq!(a.severity, 3);
    assert_eq!(a.nevras, ["libfoo-2.0-1.noarch"]);
    assert_eq!(a.cve_references.len(), 1, "{a:?}");
    let (url, title) = &a.cve_references[0];
    assert!(url.starts_with("https://"), "{url}");
    assert!(title.contains(CVE), "{title}");

    assert_eq!(ctx.advisories(&[pkg("libfoo", "1.0")])?, []);

    // The same packages as read from an rpmdb (reponame @System) match too.
    install_rpmdb(&env.root(), &build_rpms(&[libfoo2(), bar2()])?)?;
    let installed = rpmdb_packages(&env.root())?;
    let from_db = ctx.advisories(&installed)?;
    assert_eq!(
        from_db.iter().map(|a| &a.id).collect::<Vec<_>>(),
        [SECURITY_ID]
    );
    Ok(())
}

#[test]
fn filelists_are_downloaded_on_request() -> TestResult {
    let env = Env::new("filelists");
    let served = env.dir.path().join("served");
    fs::create_dir_all(&served)?;
    env.make_repo("served/testos");
    let server = HttpServer::serve(served);
    env.write_repo_file(
        "testos.repo",
        &repo_section("testos-http", &server.url("testos/")),
    );
    let mut ctx = env.context();
    let path = "/usr/share/libfoo/VERSION".to_owned();

    // By default (as upstream) refreshes skip filelists, and loading with them says so.
    ctx.update_metadata(CachePolicy::Default, &mut no_progress())?;
    let err = ctx.load_cached(true).expect_err("no filelists cached");
    assert!(
        err.to_string()
            .starts_with("rpm-md repo 'testos-http' has no cached filelists"),
        "{err}"
    );
    ctx.load_cached(false)?;
    assert_eq!(ctx.what_provides(std::slice::from_ref(&path))?, []);

    // Asking for them (on a new context: libdnf remembers the exclusion per repo) makes the
    // otherwise fresh cache stale once.
    ctx.set_download_filelists(true);
    let err = ctx
        .update_metadata(CachePolicy::Default, &mut no_progress())
        .expect_err("same context");
    assert!(err.to_string().contains("use a new context"), "{err}");
    let mut ctx = env.context();
    ctx.set_download_filelists(true);
    let updates = ctx.update_metadata(CachePolicy::Default, &mut no_progress())?;
    assert!(updates[0].updated, "{updates:?}");
    let updates = ctx.update_metadata(CachePolicy::Default, &mut no_progress())?;
    assert!(!updates[0].updated, "{updates:?}");
    ctx.load_cached(true)?;
    assert_eq!(names(&ctx.what_provides(&[path])?), ["libfoo-2.0-1.noarch"]);
    Ok(())
}

#[test]
fn a_panicking_progress_callback_is_re_raised_and_leaves_libdnf_usable() -> TestResult {
    let env = Env::new("panic");
    let served = env.dir.path().join("served");
    fs::create_dir_all(&served)?;
    env.make_repo("served/testos");
    let server = HttpServer::serve(served);
    env.write_repo_file(
        "testos.repo",
        &repo_section("testos-http", &server.url("testos/")),
    );
    let mut ctx = env.context();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = ctx.update_metadata(CachePolicy::Default, &mut |_: &str, _: u32| {
            panic!("progress callback failed")
        });
    }));
    let message = caught.expect_err("the callback's panic comes back");
    assert_eq!(
        message.downcast_ref::<&str>(),
        Some(&"progress callback failed")
    );
    // The process-wide lock is not stuck and the download itself completed.
    let updates = ctx.update_metadata(CachePolicy::Default, &mut no_progress())?;
    assert!(!updates[0].updated, "{updates:?}");
    ctx.load_cached(false)?;
    assert_eq!(ctx.packages_by_name(&["foolish".into()])?.len(), 1);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Layering: depsolve against a locked base, and writing the rpmdb.

/// The packages of the layering fixture.
struct LayerRpms {
    /// The base image: base-lib 1.0 (provides base-capability = 1.0).
    base: Vec<PathBuf>,
    /// The repo: layer-a, layer-b 1.0 and 2.0, layer-c, layer-d, base-lib 2.0.
    repo: Vec<PathBuf>,
    /// layer-e (requires layer-b), in no repo.
    local: PathBuf,
}

fn layer_rpms() -> &'static LayerRpms {
    static RPMS: OnceLock<LayerRpms> = OnceLock::new();
    RPMS.get_or_init(|| {
        let base =
            build_rpms(&[RpmSpec::new("base-lib", "1.0", "1").provides("base-capability = 1.0")])
                .expect("building the base packages");
        let repo = build_rpms(&[
            RpmSpec::new("layer-a", "1.0", "1")
                .requires("(layer-b >= 2.0 or layer-missing)")
                .requires("/usr/share/base-lib/VERSION")
                .recommends("layer-c"),
            RpmSpec::new("layer-b", "1.0", "1"),
            RpmSpec::new("layer-b", "2.0", "1"),
            RpmSpec::new("layer-c", "1.0", "1"),
            RpmSpec::new("layer-d", "1.0", "1").requires("base-capability >= 2.0"),
            RpmSpec::new("base-lib", "2.0", "1").provides("base-capability = 2.0"),
        ])
        .expect("building the repo packages");
        let local = build_rpms(&[RpmSpec::new("layer-e", "1.0", "1").requires("layer-b")])
            .expect("building the local package")
            .remove(0);
        LayerRpms { base, repo, local }
    })
}

/// A base root with base-lib 1.0 in its rpmdb and the layering repo (`testos`).
fn layering_env(name: &str, http: bool) -> (Env, Option<HttpServer>) {
    let env = Env::new(name);
    install_rpmdb(&env.root(), &layer_rpms().base).expect("writing the base rpmdb");
    let served = env.dir.path().join("served");
    let repo = served.join("testos");
    create_repo(&repo, &layer_rpms().repo, &[]).expect("creating the repo");
    let server = http.then(|| HttpServer::serve(served));
    let url = match &server {
        Some(server) => server.url("testos/"),
        None => format!("file://{}", repo.display()),
    };
    env.write_repo_file("testos.repo", &repo_section("testos", &url));
    (env, server)
}

fn depsolve(
    env: &Env,
    requests: &[&str],
    local: &[PathBuf],
    weak_deps: bool,
) -> Result<Resolution, rpmostree_dnf::Error> {
    let requests: Vec<String> = requests.iter().map(|r| (*r).to_owned()).collect();
    Context::with_install_root(&env.options(), &env.root())?.depsolve(
        &requests,
        local,
        DepsolveOptions {
            weak_deps,
            cache_only: false,
        },
        &mut no_progress(),
    )
}

fn resolved_nevras(resolution: &Resolution) -> Vec<String> {
    resolution
        .packages
        .iter()
        .map(|r| r.package.nevra())
        .collect()
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    let bytes = fs::read(path).expect("reading a package");
    format!("sha256:{:x}", sha2::Sha256::digest(&bytes))
}

/// Every resolved package has an existing file whose sha256 is its checksum.
fn assert_files_match_checksums(resolution: &Resolution) {
    for r in &resolution.packages {
        assert!(r.path.is_file(), "{r:?}");
        let hex = r.checksum.strip_prefix("sha256:").unwrap_or_default();
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{r:?}"
        );
        assert_eq!(r.checksum, sha256_of(&r.path), "{r:?}");
        assert!(!r.from_base, "{r:?}");
    }
}

#[test]
fn depsolve_layers_on_a_locked_base() -> TestResult {
    let (env, _) = layering_env("depsolve", false);
    let before = listing(&env.root());

    let resolution = depsolve(&env, &["layer-a"], &[], true)?;
    assert_eq!(
        resolved_nevras(&resolution),
        [
            "layer-a-1.0-1.noarch",
            "layer-b-2.0-1.noarch",
            "layer-c-1.0-1.noarch"
        ]
    );
    assert_eq!(resolution.inactive, []);
    assert!(resolution.packages.iter().all(|r| r.repo == "testos"
        && r.package.reponame == "testos"
        && r.path.starts_with(env.dir.path().join("served/testos"))));
    assert_files_match_checksums(&resolution);

    // Without weak dependencies the recommended layer-c stays out.
    let resolution = depsolve(&env, &["layer-a"], &[], false)?;
    assert_eq!(
        resolved_nevras(&resolution),
        ["layer-a-1.0-1.noarch", "layer-b-2.0-1.noarch"]
    );
    assert_eq!(
        listing(&env.root()),
        before,
        "depsolve changed the base root"
    );
    Ok(())
}

#[test]
fn depsolve_errors_name_what_is_wrong() -> TestResult {
    let (env, _) = layering_env("depsolve-errors", false);
    let dbdir = env.root().join("usr/share/rpm");
    let before = listing(&dbdir);

    // layer-d needs base-lib 2.0, but the base is locked.
    let err = depsolve(&env, &["layer-d"], &[], true).expect_err("base is locked");
    assert!(
        err.to_string()
            .starts_with("Could not depsolve transaction; 1 problem detected"),
        "{err}"
    );
    assert!(err.to_string().contains("base-capability >= 2.0"), "{err}");

    let err = depsolve(&env, &["nope"], &[], true).expect_err("unknown package");
    assert_eq!(err.to_string(), "Packages not found: nope");
    let err =
        depsolve(&env, &["nope", "layer-a", "nope2"], &[], true).expect_err("unknown packages");
    assert_eq!(err.to_string(), "Packages not found: nope, nope2");

    // A local package that is exactly a base package.
    let err = depsolve(&env, &[], &layer_rpms().base, true).expect_err("local base package");
    assert_eq!(
        err.to_string(),
        "Package 'base-lib-1.0-1.noarch' is already in the base"
    );
    let not_rpm = env.dir.path().join("not.rpm");
    fs::write(&not_rpm, "not an rpm")?;
    let err = depsolve(&env, &[], std::slice::from_ref(&not_rpm), true).expect_err("garbage");
    assert!(
        err.to_string().contains(&not_rpm.display().to_string()),
        "{err}"
    );
    assert_eq!(listing(&dbdir), before, "depsolve changed the base rpmdb");
    Ok(())
}

#[test]
fn depsolve_reports_requests_the_base_satisfies_as_inactive() -> TestResult {
    let (env, _) = layering_env("inactive", false);
    let resolution = depsolve(
        &env,
        &[
            "base-lib",
            "base-capability",
            "layer-c",
            "/usr/share/base-lib/VERSION",
            "base-lib-1.0-1.noarch",
            "base-l*",
        ],
        &[],
        true,
    )?;
    let base = "base-lib-1.0-1.noarch".to_owned();
    assert_eq!(
        resolution.inactive,
        [
            ("base-lib".to_owned(), base.clone()),
            ("base-capability".to_owned(), base.clone()),
            ("/usr/share/base-lib/VERSION".to_owned(), base.clone()),
            ("base-lib-1.0-1.noarch".to_owned(), base.clone()),
            ("base-l*".to_owned(), base),
        ]
    );
    assert_eq!(resolved_nevras(&resolution), ["layer-c-1.0-1.noarch"]);

    // Only inactive requests: nothing to install, no error.
    let resolution = depsolve(&env, &["base-capability >= 1.0"], &[], true)?;
    assert_eq!(resolution.packages, []);
    assert_eq!(resolution.inactive.len(), 1, "{resolution:?}");
    // A request for more than the base has is not inactive: it fails on the locked base.
    let err = depsolve(&env, &["base-capability >= 2.0"], &[], true).expect_err("locked");
    assert!(
        err.to_string()
            .starts_with("Could not depsolve transaction")
            && err.to_string().contains("base-lib-2.0-1.noarch"),
        "{err}"
    );
    Ok(())
}

#[test]
fn depsolve_installs_local_packages() -> TestResult {
    let (env, _) = layering_env("local", false);
    let local = layer_rpms().local.clone();
    let resolution = depsolve(&env, &["layer-e"], std::slice::from_ref(&local), false)?;
    assert_eq!(
        resolved_nevras(&resolution),
        ["layer-b-2.0-1.noarch", "layer-e-1.0-1.noarch"]
    );
    // Asking for the local package by name as well: it provides it.
    assert_eq!(
        resolution.inactive,
        [("layer-e".to_owned(), "layer-e-1.0-1.noarch".to_owned())]
    );
    let e = &resolution.packages[1];
    assert_eq!(
        (e.repo.as_str(), e.package.reponame.as_str(), &e.path),
        ("@commandline", "@commandline", &local)
    );
    assert_eq!(resolution.packages[0].repo, "testos");
    assert_files_match_checksums(&resolution);
    Ok(())
}

#[test]
fn depsolve_downloads_remote_packages_over_the_helper_protocol() -> TestResult {
    use rpmostree_dnf::protocol::{Message, Reply, Request, serve};
    let (env, server) = layering_env("depsolve-http", true);
    let dbdir = env.root().join("usr/share/rpm");
    let before = listing(&dbdir);
    let request = |requests: &[&str], cache_only: bool| Request::Depsolve {
        options: env.options(),
        root: env.root(),
        requests: requests.iter().map(|r| (*r).to_owned()).collect(),
        local: vec![],
        weak_deps: true,
        cache_only,
        remove: vec![],
        replace_local: vec![],
    };
    let run = |request: &Request| -> (i32, Vec<Message>) {
        let input = serde_json::to_vec(request).expect("serialising the request");
        let mut out = Vec::new();
        let status = serve(&input[..], &mut out);
        let messages = String::from_utf8_lossy(&out)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a message line"))
            .collect();
        (status, messages)
    };

    // Nothing cached and cache-only: an error, and no network.
    let (status, messages) = run(&request(&["layer-a"], true));
    assert_eq!(status, 1);
    assert!(
        matches!(messages.last(), Some(Message::Error(e)) if e.contains("has no cached metadata")),
        "{messages:?}"
    );
    let server = server.expect("the server");
    assert_eq!(server.requests(), 0);

    let (status, messages) = run(&request(&["layer-a"], false));
    assert_eq!(status, 0, "{messages:?}");
    let Some(Message::Reply(Reply::Resolved(resolution))) = messages.last() else {
        panic!("{messages:?}");
    };
    assert_eq!(
        resolved_nevras(resolution),
        [
            "layer-a-1.0-1.noarch",
            "layer-b-2.0-1.noarch",
            "layer-c-1.0-1.noarch"
        ]
    );
    assert_files_match_checksums(resolution);
    assert!(
        resolution
            .packages
            .iter()
            .all(|r| r.path.starts_with(env.cache())),
        "{resolution:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, Message::Progress { repo, percent: 100 } if repo == "testos")),
        "{messages:?}"
    );

    // Cache-only now works without the network.
    let requests = server.requests();
    let (status, messages) = run(&request(&["layer-a"], true));
    assert_eq!(status, 0, "{messages:?}");
    assert_eq!(server.requests(), requests);
    assert!(
        !messages
            .iter()
            .any(|m| matches!(m, Message::Progress { .. })),
        "{messages:?}"
    );

    // With fresh metadata, only the package that went missing from the cache is downloaded
    // again, with progress.
    let layer_c = resolution.packages[2].path.clone();
    fs::remove_file(&layer_c)?;
    let (status, messages) = run(&request(&["layer-a"], false));
    assert_eq!(status, 0, "{messages:?}");
    assert!(layer_c.is_file());
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, Message::Progress { repo, percent: 100 } if repo == "testos")),
        "{messages:?}"
    );

    // A downloaded package that went missing: cache-only names it; a download failure names
    // the package and the repo.
    fs::remove_file(&layer_c)?;
    let (status, messages) = run(&request(&["layer-a"], true));
    assert_eq!(status, 1);
    assert!(
        matches!(messages.last(), Some(Message::Error(e))
            if e.contains("layer-c-1.0-1.noarch") && e.contains("'testos'") && e.contains("download cache")),
        "{messages:?}"
    );
    fs::remove_file(
        env.dir
            .path()
            .join("served/testos/Packages/layer-c-1.0-1.noarch.rpm"),
    )?;
    let (status, messages) = run(&request(&["layer-a"], false));
    assert_eq!(status, 1);
    assert!(
        matches!(messages.last(), Some(Message::Error(e))
            if e.starts_with("Downloading ") && e.contains("layer-c-1.0-1.noarch") && e.contains("rpm-md repo 'testos'")),
        "{messages:?}"
    );
    assert_eq!(listing(&dbdir), before, "depsolve changed the base rpmdb");
    Ok(())
}

/// The lead, signature header and main header of an RPM: what upstream keeps as a "metarpm".
fn header_only(rpm: &Path, dest: &Path) {
    let bytes = fs::read(rpm).expect("reading a package");
    let be32 = |off: usize| -> usize {
        u32::from_be_bytes(bytes[off..off + 4].try_into().expect("4 bytes")) as usize
    };
    let sig = 96;
    let sig_len = 16 + 16 * be32(sig + 8) + be32(sig + 12);
    let header = sig + sig_len.div_ceil(8) * 8;
    let end = header + 16 + 16 * be32(header + 8) + be32(header + 12);
    assert!(end < bytes.len(), "{} has no payload?", rpm.display());
    fs::write(dest, &bytes[..end]).expect("writing a header-only package");
}

fn rpm_qa(root: &Path) -> Vec<String> {
    let out = std::process::Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/usr/share/rpm", "-qa"])
        .output()
        .expect("running rpm -qa");
    assert!(out.status.success(), "{out:?}");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn write_rpmdb_adds_full_and_header_only_packages() -> TestResult {
    use rpmostree_dnf::protocol::{Message, Reply, Request, serve};
    let host_db = Path::new("/usr/share/rpm");
    let host_had_db = host_db.exists();
    let tmp = TempDir::new("write-rpmdb");
    let base = tmp.path().join("base");
    install_rpmdb(&base, &layer_rpms().base)?;
    let layered: Vec<PathBuf> = ["layer-a-1.0-1", "layer-b-2.0-1", "layer-c-1.0-1"]
        .iter()
        .map(|n| {
            layer_rpms()
                .repo
                .iter()
                .find(|p| p.ends_with(format!("{n}.noarch.rpm")))
                .expect("a fixture package")
                .clone()
        })
        .collect();
    let headers = tmp.path().join("metarpm");
    fs::create_dir_all(&headers)?;
    let header_files: Vec<PathBuf> = layered
        .iter()
        .map(|p| {
            let dest = headers.join(p.file_name().expect("a file name"));
            header_only(p, &dest);
            dest
        })
        .collect();

    for (name, packages) in [("full", &layered), ("header-only", &header_files)] {
        // A private copy of the base root's database.
        let root = tmp.path().join(name);
        let db = root.join("usr/share/rpm");
        fs::create_dir_all(&db)?;
        for entry in fs::read_dir(base.join("usr/share/rpm"))? {
            let entry = entry?;
            fs::copy(entry.path(), db.join(entry.file_name()))?;
        }
        if name == "full" {
            rpmostree_dnf::write_rpmdb(&root, packages)?;
        } else {
            let request = Request::WriteRpmdb {
                root: root.clone(),
                packages: packages.clone(),
                upgrades: vec![],
                erase: vec![],
            };
            let mut out = Vec::new();
            assert_eq!(serve(&serde_json::to_vec(&request)?[..], &mut out), 0);
            let text = String::from_utf8_lossy(&out);
            let last: Message = serde_json::from_str(text.lines().last().unwrap_or_default())?;
            assert_eq!(last, Message::Reply(Reply::Done));
        }
        let leftovers: Vec<String> = fs::read_dir(&db)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        assert!(
            leftovers
                .iter()
                .all(|f| !f.ends_with("-shm") && !f.ends_with("-wal") && !f.ends_with(".lock")),
            "{name}: {leftovers:?}"
        );
        assert_eq!(
            rpm_qa(&root),
            [
                "base-lib-1.0-1.noarch",
                "layer-a-1.0-1.noarch",
                "layer-b-2.0-1.noarch",
                "layer-c-1.0-1.noarch"
            ],
            "{name}"
        );
        // The layered packages are readable through libdnf too.
        assert_eq!(rpmdb_packages(&root)?.len(), 4, "{name}");
    }
    assert_eq!(
        host_db.exists(),
        host_had_db,
        "writing a tree's rpmdb touched the host's /usr/share/rpm"
    );

    // Something that is no RPM is an error naming it; the database stays usable.
    let root = tmp.path().join("full");
    let bad = tmp.path().join("bad.rpm");
    fs::write(&bad, "not an rpm")?;
    let err = rpmostree_dnf::write_rpmdb(&root, std::slice::from_ref(&bad)).expect_err("garbage");
    assert!(
        err.to_string().contains(&bad.display().to_string()),
        "{err}"
    );
    assert_eq!(rpm_qa(&root).len(), 4);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Base overrides: removals and local replacements, in the depsolve and in the rpmdb.

/// The packages of the overrides fixture.
struct OverrideRpms {
    /// The base image: ov-lib 1.0 (with a directory of its own), ov-app 1.0 (requires ov-lib),
    /// ov-leaf 1.0 (nothing needs it), ov-epoch 3:1.0.
    base: Vec<PathBuf>,
    /// The repo: ov-extra (requires ov-lib >= 2.0).
    repo: Vec<PathBuf>,
    /// ov-lib 2.0, in no repo.
    lib_newer: PathBuf,
    /// ov-lib 0.9, in no repo.
    lib_older: PathBuf,
    /// ov-new 1.0 (no base package of that name), in no repo.
    new: PathBuf,
}

fn override_rpms() -> &'static OverrideRpms {
    static RPMS: OnceLock<OverrideRpms> = OnceLock::new();
    RPMS.get_or_init(|| {
        let lib = |version: &str| {
            RpmSpec::new("ov-lib", version, "1")
                .file("/usr/lib/ov-lib/libov.so", &format!("ov-lib {version}\n"))
                .dir("/usr/lib/ov-lib")
                .provides(&format!("ov-capability = {version}"))
        };
        let base = build_rpms(&[
            lib("1.0"),
            RpmSpec::new("ov-app", "1.0", "1").requires("ov-lib"),
            RpmSpec::new("ov-leaf", "1.0", "1"),
            RpmSpec::new("ov-epoch", "1.0", "1").epoch(3),
        ])
        .expect("building the base packages");
        let repo = build_rpms(&[RpmSpec::new("ov-extra", "1.0", "1").requires("ov-lib >= 2.0")])
            .expect("building the repo packages");
        let mut local = build_rpms(&[lib("2.0"), lib("0.9"), RpmSpec::new("ov-new", "1.0", "1")])
            .expect("building the local packages");
        let new = local.remove(2);
        let lib_older = local.remove(1);
        let lib_newer = local.remove(0);
        OverrideRpms {
            base,
            repo,
            lib_newer,
            lib_older,
            new,
        }
    })
}

/// A base root with the overrides fixture's base in its rpmdb and its repo (`testos`).
fn override_env(name: &str) -> Env {
    let env = Env::new(name);
    install_rpmdb(&env.root(), &override_rpms().base).expect("writing the base rpmdb");
    let repo = env.dir.path().join("served/testos");
    create_repo(&repo, &override_rpms().repo, &[]).expect("creating the repo");
    env.write_repo_file(
        "testos.repo",
        &repo_section("testos", &format!("file://{}", repo.display())),
    );
    env
}

fn depsolve_overrides(
    env: &Env,
    requests: &[&str],
    remove: &[&str],
    replace_local: &[PathBuf],
) -> Result<Resolution, rpmostree_dnf::Error> {
    let requests: Vec<String> = requests.iter().map(|r| (*r).to_owned()).collect();
    let overrides = Overrides {
        remove: remove.iter().map(|r| (*r).to_owned()).collect(),
        replace_local: replace_local.to_vec(),
    };
    Context::with_install_root(&env.options(), &env.root())?.depsolve_with_overrides(
        &requests,
        &[],
        &overrides,
        DepsolveOptions {
            weak_deps: true,
            cache_only: false,
        },
        &mut no_progress(),
    )
}

/// `(old NEVRA, new NEVRA)` of each replacement.
fn replaced_nevras(resolution: &Resolution) -> Vec<(String, String)> {
    resolution
        .replaced
        .iter()
        .map(|(old, new)| (old.nevra(), new.package.nevra()))
        .collect()
}

#[test]
fn depsolve_removes_base_packages() -> TestResult {
    let env = override_env("override-remove");
    let dbdir = env.root().join("usr/share/rpm");
    let before = listing(&dbdir);

    let resolution = depsolve_overrides(&env, &[], &["ov-leaf"], &[])?;
    assert_eq!(names(&resolution.removed), ["ov-leaf-1.0-1.noarch"]);
    assert_eq!(resolution.removed[0].reponame, "@System");
    assert_eq!(resolution.packages, []);
    assert_eq!(resolution.replaced, []);

    // A package and everything that needs it: both named, both removed.
    let resolution = depsolve_overrides(&env, &[], &["ov-app", "ov-lib"], &[])?;
    assert_eq!(
        names(&resolution.removed),
        ["ov-app-1.0-1.noarch", "ov-lib-1.0-1.noarch"]
    );

    // A removal next to a layered package.
    let resolution = depsolve_overrides(
        &env,
        &["ov-extra"],
        &["ov-leaf"],
        &[override_rpms().lib_newer.clone()],
    )?;
    assert_eq!(names(&resolution.removed), ["ov-leaf-1.0-1.noarch"]);
    assert_eq!(resolved_nevras(&resolution), ["ov-extra-1.0-1.noarch"]);
    assert_eq!(listing(&dbdir), before, "depsolve changed the base rpmdb");
    Ok(())
}

#[test]
fn depsolve_refuses_removals_the_base_cannot_do_without() -> TestResult {
    let env = override_env("override-remove-errors");
    // ov-app requires ov-lib: it would have to go too.
    let err = depsolve_overrides(&env, &[], &["ov-lib"], &[]).expect_err("ov-app needs it");
    assert_eq!(
        err.to_string(),
        "Base packages would be removed: ov-app-1.0-1.noarch"
    );
    let err = depsolve_overrides(&env, &[], &["ov-nope"], &[]).expect_err("unknown");
    assert_eq!(err.to_string(), "Package \"ov-nope\" not found");
    // Removing a package and requesting it (or what it provides) again.
    let err = depsolve_overrides(&env, &["ov-capability"], &["ov-app", "ov-lib"], &[])
        .expect_err("remove and request");
    assert_eq!(
        err.to_string(),
        "Cannot request 'ov-capability' provided by removed package 'ov-lib-1.0-1.noarch'"
    );
    // A layered package needing what is removed.
    let err = depsolve_overrides(&env, &["ov-extra"], &["ov-app", "ov-lib"], &[])
        .expect_err("ov-extra needs ov-lib");
    assert!(
        err.to_string()
            .starts_with("Could not depsolve transaction"),
        "{err}"
    );
    Ok(())
}

#[test]
fn depsolve_replaces_base_packages_with_local_ones() -> TestResult {
    let env = override_env("override-replace");
    let dbdir = env.root().join("usr/share/rpm");
    let before = listing(&dbdir);
    let rpms = override_rpms();

    // Newer.
    let resolution = depsolve_overrides(&env, &[], &[], std::slice::from_ref(&rpms.lib_newer))?;
    assert_eq!(
        replaced_nevras(&resolution),
        [(
            "ov-lib-1.0-1.noarch".to_owned(),
            "ov-lib-2.0-1.noarch".to_owned()
        )]
    );
    let (old, new) = &resolution.replaced[0];
    assert_eq!(old.reponame, "@System");
    assert_eq!(
        (new.repo.as_str(), new.package.reponame.as_str(), &new.path),
        ("@commandline", "@commandline", &rpms.lib_newer)
    );
    assert_eq!(new.checksum, sha256_of(&rpms.lib_newer));
    assert_eq!(resolution.packages, []);
    assert_eq!(resolution.removed, []);

    // Older.
    let resolution = depsolve_overrides(&env, &[], &[], std::slice::from_ref(&rpms.lib_older))?;
    assert_eq!(
        replaced_nevras(&resolution),
        [(
            "ov-lib-1.0-1.noarch".to_owned(),
            "ov-lib-0.9-1.noarch".to_owned()
        )]
    );
    assert_eq!(resolution.packages, []);

    // ov-extra needs ov-lib 2.0: refused on the locked base, fine with the replacement.
    let err = depsolve_overrides(&env, &["ov-extra"], &[], &[]).expect_err("locked base");
    assert!(
        err.to_string()
            .starts_with("Could not depsolve transaction"),
        "{err}"
    );
    let resolution = depsolve_overrides(
        &env,
        &["ov-extra"],
        &[],
        std::slice::from_ref(&rpms.lib_newer),
    )?;
    assert_eq!(resolved_nevras(&resolution), ["ov-extra-1.0-1.noarch"]);
    assert_eq!(resolution.replaced.len(), 1);

    // And over the helper protocol, with a removal.
    use rpmostree_dnf::protocol::{Message, Reply, Request, serve};
    let request = Request::Depsolve {
        options: env.options(),
        root: env.root(),
        requests: vec![],
        local: vec![],
        weak_deps: true,
        cache_only: false,
        remove: vec!["ov-leaf".into()],
        replace_local: vec![rpms.lib_older.clone()],
    };
    let mut out = Vec::new();
    assert_eq!(serve(&serde_json::to_vec(&request)?[..], &mut out), 0);
    let text = String::from_utf8_lossy(&out);
    let Message::Reply(Reply::Resolved(resolution)) =
        serde_json::from_str(text.lines().last().unwrap_or_default())?
    else {
        panic!("{text}");
    };
    assert_eq!(names(&resolution.removed), ["ov-leaf-1.0-1.noarch"]);
    assert_eq!(
        replaced_nevras(&resolution),
        [(
            "ov-lib-1.0-1.noarch".to_owned(),
            "ov-lib-0.9-1.noarch".to_owned()
        )]
    );
    assert_eq!(listing(&dbdir), before, "depsolve changed the base rpmdb");
    Ok(())
}

#[test]
fn depsolve_refuses_replacements_that_are_no_replacements() -> TestResult {
    let env = override_env("override-replace-errors");
    let rpms = override_rpms();
    let err = depsolve_overrides(&env, &[], &[], std::slice::from_ref(&rpms.new))
        .expect_err("not in the base");
    assert_eq!(
        err.to_string(),
        "Package 'ov-new' is not in the base; use install to layer it"
    );
    let leaf = rpms
        .base
        .iter()
        .find(|p| p.ends_with("ov-leaf-1.0-1.noarch.rpm"))
        .expect("ov-leaf");
    let err = depsolve_overrides(&env, &[], &[], std::slice::from_ref(leaf))
        .expect_err("the base version");
    assert_eq!(
        err.to_string(),
        "Package 'ov-leaf-1.0-1.noarch' is already in the base"
    );
    let err = depsolve_overrides(
        &env,
        &[],
        &["ov-lib"],
        std::slice::from_ref(&rpms.lib_newer),
    )
    .expect_err("removed and replaced");
    assert_eq!(
        err.to_string(),
        "Package 'ov-lib' is both removed and replaced"
    );
    let err = depsolve_overrides(
        &env,
        &[],
        &[],
        &[rpms.lib_newer.clone(), rpms.lib_older.clone()],
    )
    .expect_err("two replacements");
    assert_eq!(
        err.to_string(),
        "Package 'ov-lib' is replaced twice: ov-lib-2.0-1.noarch, ov-lib-0.9-1.noarch"
    );
    Ok(())
}

/// A private copy of the database of `base` under `root`.
fn copy_rpmdb(base: &Path, root: &Path) -> std::io::Result<()> {
    let db = root.join("usr/share/rpm");
    fs::create_dir_all(&db)?;
    for entry in fs::read_dir(base.join("usr/share/rpm"))? {
        let entry = entry?;
        fs::copy(entry.path(), db.join(entry.file_name()))?;
    }
    Ok(())
}

#[test]
fn write_rpmdb_erases_and_upgrades_base_packages() -> TestResult {
    use rpmostree_dnf::protocol::{Message, Reply, Request, serve};
    let tmp = TempDir::new("edit-rpmdb");
    let base = tmp.path().join("base");
    install_rpmdb(&base, &override_rpms().base)?;
    let rpms = override_rpms();
    let headers = tmp.path().join("metarpm");
    fs::create_dir_all(&headers)?;
    let newer = headers.join("ov-lib-2.0-1.noarch.rpm");
    header_only(&rpms.lib_newer, &newer);

    // Over the protocol: a removal, an upgrade from a header-only file and a new package.
    let root = tmp.path().join("upgrade");
    copy_rpmdb(&base, &root)?;
    let request = Request::WriteRpmdb {
        root: root.clone(),
        packages: vec![rpms.new.clone()],
        upgrades: vec![newer.clone()],
        erase: vec!["ov-leaf-1.0-1.noarch".into()],
    };
    let mut out = Vec::new();
    assert_eq!(serve(&serde_json::to_vec(&request)?[..], &mut out), 0);
    let text = String::from_utf8_lossy(&out);
    let last: Message = serde_json::from_str(text.lines().last().unwrap_or_default())?;
    assert_eq!(last, Message::Reply(Reply::Done));
    let leftovers: Vec<String> = fs::read_dir(root.join("usr/share/rpm"))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    assert!(
        leftovers
            .iter()
            .all(|f| !f.ends_with("-shm") && !f.ends_with("-wal") && !f.ends_with(".lock")),
        "{leftovers:?}"
    );
    assert_eq!(
        rpm_qa(&root),
        [
            "ov-app-1.0-1.noarch",
            "ov-epoch-1.0-1.noarch",
            "ov-lib-2.0-1.noarch",
            "ov-new-1.0-1.noarch"
        ]
    );

    // A downgrade from a full RPM, and an erasure by a NEVRA with an epoch.
    let root = tmp.path().join("downgrade");
    copy_rpmdb(&base, &root)?;
    rpmostree_dnf::edit_rpmdb(
        &root,
        &[],
        std::slice::from_ref(&rpms.lib_older),
        &["ov-epoch-3:1.0-1.noarch".to_owned()],
    )?;
    assert_eq!(
        rpm_qa(&root),
        [
            "ov-app-1.0-1.noarch",
            "ov-leaf-1.0-1.noarch",
            "ov-lib-0.9-1.noarch"
        ]
    );
    assert_eq!(rpmdb_packages(&root)?.len(), 3);

    // Erasing what is not there names it and changes nothing.
    let err = rpmostree_dnf::edit_rpmdb(
        &root,
        std::slice::from_ref(&rpms.new),
        &[],
        &["ov-leaf-1.0-1.noarch".into(), "ov-gone-1-1.noarch".into()],
    )
    .expect_err("not installed");
    assert!(
        err.to_string()
            .ends_with("Packages not in the rpmdb: ov-gone-1-1.noarch"),
        "{err}"
    );
    assert_eq!(rpm_qa(&root).len(), 3);
    Ok(())
}

/// `rpm -ql` of one package in the rpmdb of `root`.
fn rpm_ql(root: &Path, name: &str) -> Vec<String> {
    let out = std::process::Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/usr/share/rpm", "-ql", name])
        .output()
        .expect("running rpm -ql");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn package_files_lists_what_rpm_lists() -> TestResult {
    use rpmostree_dnf::protocol::{Message, Reply, Request, serve};
    let tmp = TempDir::new("package-files");
    let root = tmp.path().join("root");
    install_rpmdb(&root, &override_rpms().base)?;
    let dbdir = root.join("usr/share/rpm");
    let before = listing(&dbdir);

    let nevras = vec![
        "ov-lib-1.0-1.noarch".to_owned(),
        "ov-epoch-3:1.0-1.noarch".to_owned(),
    ];
    let files = rpmostree_dnf::package_files(&root, &nevras)?;
    assert_eq!(
        listing(&dbdir),
        before,
        "reading changed the rpmdb directory"
    );
    assert_eq!(
        files[0],
        (
            nevras[0].clone(),
            vec![
                "/usr/lib/ov-lib".to_owned(),
                "/usr/lib/ov-lib/libov.so".to_owned(),
                "/usr/share/ov-lib/VERSION".to_owned()
            ]
        )
    );

    // Over the protocol; an unknown NEVRA is named.
    let run = |nevras: Vec<String>| -> Result<Message, Box<dyn std::error::Error>> {
        let request = Request::PackageFiles {
            root: root.clone(),
            nevras,
        };
        let mut out = Vec::new();
        serve(&serde_json::to_vec(&request)?[..], &mut out);
        let text = String::from_utf8_lossy(&out);
        Ok(serde_json::from_str(
            text.lines().last().unwrap_or_default(),
        )?)
    };
    let leaf = run(vec!["ov-leaf-1.0-1.noarch".into()])?;
    let Message::Error(e) = run(vec![
        "ov-leaf-1.0-1.noarch".into(),
        "ov-leaf-2.0-1.noarch".into(),
    ])?
    else {
        panic!("an unknown NEVRA was accepted");
    };
    assert!(
        e.ends_with("packages not in it: ov-leaf-2.0-1.noarch"),
        "{e}"
    );
    assert_eq!(
        listing(&dbdir),
        before,
        "reading changed the rpmdb directory"
    );

    // A root without a database.
    let err = rpmostree_dnf::package_files(&tmp.path().join("nothing"), &nevras)
        .expect_err("no database");
    assert!(
        err.to_string().starts_with("Reading the rpmdb of "),
        "{err}"
    );

    // rpm itself agrees (last: it leaves sqlite files behind).
    assert_eq!(
        files,
        [
            (nevras[0].clone(), rpm_ql(&root, "ov-lib")),
            (nevras[1].clone(), rpm_ql(&root, "ov-epoch")),
        ]
    );
    assert_eq!(
        leaf,
        Message::Reply(Reply::Files(vec![(
            "ov-leaf-1.0-1.noarch".into(),
            rpm_ql(&root, "ov-leaf")
        )]))
    );
    Ok(())
}

#[test]
fn file_triggers_reads_transfiletriggerin_scripts_read_only() -> TestResult {
    use rpmostree_dnf::FileTrigger;
    use rpmostree_dnf::protocol::{Message, Reply, Request, serve};
    let tmp = TempDir::new("file-triggers");
    let root = tmp.path().join("root");
    let rpms = build_rpms(&[
        RpmSpec::new("ft-multi", "1.0", "1")
            .script(
                "%transfiletriggerin -- /usr/share/a /usr/lib/b",
                "cat > /dev/null",
            )
            .script("%transfiletriggerun -- /usr/share/x", "echo un")
            .script("%transfiletriggerin -e -- /usr/share/c", "echo %%{_prefix}"),
        RpmSpec::new("ft-bash", "2.0", "3")
            .epoch(1)
            .script(
                "%transfiletriggerin -p /bin/bash -- /usr/share/watched",
                "read -r first",
            )
            .script("%post", "true"),
        RpmSpec::new("ft-none", "1.0", "1").script("%post", "true"),
    ])?;
    install_rpmdb(&root, &rpms)?;
    let dbdir = root.join("usr/share/rpm");
    let before = listing(&dbdir);

    let trigger =
        |package: &str, nevra: &str, interp: &str, script: &str, patterns: &[&str]| FileTrigger {
            package: package.into(),
            nevra: nevra.into(),
            interpreter: vec![interp.into()],
            script: script.into(),
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
        };
    let expected = vec![
        trigger(
            "ft-bash",
            "ft-bash-1:2.0-3.noarch",
            "/bin/bash",
            "read -r first",
            &["/usr/share/watched"],
        ),
        trigger(
            "ft-multi",
            "ft-multi-1.0-1.noarch",
            "/bin/sh",
            "cat > /dev/null",
            // rpmbuild stores a script's prefixes sorted.
            &["/usr/lib/b", "/usr/share/a"],
        ),
        trigger(
            "ft-multi",
            "ft-multi-1.0-1.noarch",
            "/bin/sh",
            "echo /usr",
            &["/usr/share/c"],
        ),
    ];
    assert_eq!(rpmostree_dnf::file_triggers(&root)?, expected);
    assert_eq!(
        listing(&dbdir),
        before,
        "reading changed the rpmdb directory"
    );

    // Over the protocol.
    let request = Request::FileTriggers { root: root.clone() };
    let mut out = Vec::new();
    assert_eq!(serve(&serde_json::to_vec(&request)?[..], &mut out), 0);
    let text = String::from_utf8_lossy(&out);
    let reply: Message = serde_json::from_str(text.lines().last().unwrap_or_default())?;
    assert_eq!(reply, Message::Reply(Reply::FileTriggers(expected)));
    assert_eq!(
        listing(&dbdir),
        before,
        "reading changed the rpmdb directory"
    );

    // An empty database has none; a root without one is an error naming it.
    let empty = tmp.path().join("empty");
    install_rpmdb(&empty, &[])?;
    assert_eq!(rpmostree_dnf::file_triggers(&empty)?, []);
    let err = rpmostree_dnf::file_triggers(&tmp.path().join("nothing")).expect_err("no database");
    assert!(
        err.to_string().starts_with("Reading the rpmdb of "),
        "{err}"
    );
    Ok(())
}
