//! Golden tests of the generator: each `data/NAME.xml` must generate exactly the files in
//! `golden/NAME/`. Set `UPDATE_GOLDEN=1` to rewrite the expected files after a reviewed change.
//!
//! The `shapes` sample covers every signature shape of the real interface file; its golden
//! output is also compiled and served by the API crate's tests (`api/tests/shapes.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn check_sample(name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let xml = std::fs::read_to_string(root.join("data").join(format!("{name}.xml"))).unwrap();
    let files = rpmostree_codegen::generate(&xml, &format!("codegen/tests/data/{name}.xml"))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let dir = root.join("golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in &files {
            std::fs::write(dir.join(file), text).unwrap();
        }
        return;
    }
    let problems = rpmostree_codegen::diff_dir(&files, &dir).unwrap();
    for (file, text) in &files {
        let expected = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if expected != *text {
            for (n, (a, b)) in expected.lines().zip(text.lines()).enumerate() {
                if a != b {
                    eprintln!("{file}:{}: expected\n  {a}\ngot\n  {b}", n + 1);
                    break;
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "generated output of {name} differs from golden/{name} ({}); if the change is intended, rerun with UPDATE_GOLDEN=1 and review the diff",
        problems.join(", ")
    );
}

#[test]
fn shapes() {
    check_sample("shapes");
}

#[test]
fn output_is_deterministic() {
    let xml = include_str!("data/shapes.xml");
    let a = rpmostree_codegen::generate(xml, "x").unwrap();
    let b = rpmostree_codegen::generate(xml, "x").unwrap();
    assert_eq!(a, b);
}

#[test]
fn changing_an_argument_type_changes_the_output_and_is_detected() {
    let xml = include_str!("data/shapes.xml");
    let before = rpmostree_codegen::generate(xml, "x").unwrap();
    let changed = xml.replace(
        r#"<arg type="s" name="name" direction="in"/>"#,
        r#"<arg type="u" name="name" direction="in"/>"#,
    );
    assert_ne!(changed, xml);
    let after = rpmostree_codegen::generate(&changed, "x").unwrap();
    let dir = std::env::temp_dir().join(format!("rpmostree-codegen-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in &before {
        std::fs::write(dir.join(file), text).unwrap();
    }
    assert!(
        rpmostree_codegen::diff_dir(&before, &dir)
            .unwrap()
            .is_empty()
    );
    let problems = rpmostree_codegen::diff_dir(&after, &dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        problems.contains(&"service.rs differs".to_owned()),
        "{problems:?}"
    );
    let service = &after.iter().find(|(f, _)| f == "service.rs").unwrap().1;
    assert!(
        service.contains("fn find(&self, name: u32)"),
        "the proxy takes the new type"
    );
}

#[test]
fn schema_mistakes_are_reported() {
    let base = include_str!("data/shapes.xml");
    let cases = [
        (
            r#"value="b: Reboot afterwards.""#,
            r#"value="b Reboot afterwards.""#,
            "must read 'SIGNATURE: meaning'",
        ),
        (
            r#"value="u: How many.""#,
            r#"value="a{: How many.""#,
            "bad signature",
        ),
        (
            r#"<property name="Items" type="aa{sv}" access="read">
      <annotation name="org.projectatomic.rpmostree1.Dict" value="Details"/>"#,
            r#"<property name="Items" type="aa{sv}" access="read">
      <annotation name="org.projectatomic.rpmostree1.Dict" value="Details"/>
      <annotation name="org.projectatomic.rpmostree1.Dict.Key.checksum" value="u: Conflicts."/>"#,
            "is 'u' here but 's' elsewhere",
        ),
        (
            r#"<property name="Home" type="o" access="read"/>"#,
            r#"<property name="Home" type="o" access="read"><annotation name="org.projectatomic.rpmostree1.Dict" value="Home"/></property>"#,
            "only allowed on a{sv}",
        ),
    ];
    for (from, to, expected) in cases {
        let xml = base.replacen(from, to, 1);
        assert_ne!(xml, base, "the case must change the sample: {from}");
        match rpmostree_codegen::generate(&xml, "x") {
            Err(e) => assert!(e.contains(expected), "{e} should mention {expected}"),
            Ok(_) => panic!("expected an error mentioning {expected}"),
        }
    }
}

#[test]
fn the_real_interface_generates_every_member() {
    let xml = include_str!("../../interface/org.projectatomic.rpmostree1.xml");
    let model = rpmostree_codegen::model::build(xml).unwrap();
    let files = rpmostree_codegen::generate(xml, "x").unwrap();
    let text: String = files.iter().map(|(_, t)| t.as_str()).collect();
    let mut count = 0;
    for iface in &model.interfaces {
        for m in &iface.methods {
            assert!(
                text.contains(&format!("#[zbus(name = \"{}\")]", m.name)),
                "{}",
                m.name
            );
            count += 1;
        }
        for p in &iface.properties {
            assert!(
                text.contains(&format!("property, name = \"{}\"", p.name)),
                "{}",
                p.name
            );
        }
        for s in &iface.signals {
            assert!(
                text.contains(&format!("signal, name = \"{}\"", s.name)),
                "{}",
                s.name
            );
        }
    }
    assert_eq!(count, 37, "the interface has 37 methods");
}

#[test]
fn api_diff_allows_additions_and_names_every_break() {
    let xml = include_str!("../../interface/org.projectatomic.rpmostree1.xml");
    assert_eq!(
        rpmostree_codegen::api_diff(xml, xml).unwrap(),
        Vec::<String>::new()
    );

    // An addition is compatible.
    let added = xml.replacen(
        "<method name=\"Reload\"/>",
        "<method name=\"Frobnicate\"/>\n    <method name=\"Reload\"/>",
        1,
    );
    assert_ne!(added, xml);
    assert!(rpmostree_codegen::api_diff(xml, &added).unwrap().is_empty());

    // A removed method, a retyped argument, a retyped property, a removed signal, a retyped key.
    let broken = xml
        .replacen("<method name=\"Moo\">", "<method name=\"Mooo\">", 1)
        .replacen(
            "<arg type=\"s\" name=\"deployid\" direction=\"in\"/>",
            "<arg type=\"u\" name=\"deployid\" direction=\"in\"/>",
            1,
        )
        .replacen(
            "<property name=\"Path\" type=\"s\"",
            "<property name=\"Path\" type=\"o\"",
            1,
        )
        .replacen(
            "<signal name=\"ProgressEnd\"",
            "<signal name=\"ProgressDone\"",
            1,
        )
        .replacen(
            "Dict.Key.reboot\" value=\"b:",
            "Dict.Key.reboot\" value=\"s:",
            1,
        );
    let problems = rpmostree_codegen::api_diff(xml, &broken).unwrap();
    let text = problems.join("\n");
    for expected in [
        "org.projectatomic.rpmostree1.OSExperimental.Moo: method removed",
        "deployid",
        "org.projectatomic.rpmostree1.Sysroot.Path: property type changed from s to o",
        "org.projectatomic.rpmostree1.Transaction.ProgressEnd: signal removed",
        "key 'reboot' changed type from b to s",
    ] {
        assert!(text.contains(expected), "missing '{expected}' in:\n{text}");
    }
}
