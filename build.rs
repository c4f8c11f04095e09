//! Freshness guard: regenerates the D-Bus layer into OUT_DIR and fails the build when the
//! committed `generated/` differs. It never writes to the source tree; `cargo xtask codegen`
//! does that.

use std::path::Path;

const SOURCE: &str = "interface/org.projectatomic.rpmostree1.xml";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=generated");
    if let Err(message) = check() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn check() -> Result<(), String> {
    let xml = std::fs::read_to_string(SOURCE).map_err(|e| format!("{SOURCE}: {e}"))?;
    let files = rpmostree_codegen::generate(&xml, SOURCE)?;
    let out_dir = std::env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?;
    let out = Path::new(&out_dir).join("generated");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (name, text) in &files {
        std::fs::write(out.join(name), text).map_err(|e| format!("{name}: {e}"))?;
    }
    let problems = rpmostree_codegen::diff_dir(&files, Path::new("generated"))?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "generated/ does not match {SOURCE} ({}); run `cargo xtask codegen` and commit the result",
            problems.join(", ")
        ))
    }
}
