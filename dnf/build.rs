//! Links libdnf 0.x, GLib/GObject and librpm directly: `pkg-config libdnf` fails on Debian 12
//! (its `librepo.pc` dependency is missing), and the few symbols used are declared by hand in
//! `src/ffi.rs`, so no bindgen and no -sys crates are needed.

fn main() {
    for lib in ["dnf", "gobject-2.0", "glib-2.0", "rpm", "rpmio"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
