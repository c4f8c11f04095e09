//! API compatibility: compares two interface files as parsed models and lists every change an
//! existing client would notice. Additions are allowed; removing or changing an interface,
//! method, argument (name, type, direction, position), property (type, access) or signal is a
//! break, and so is removing or retyping a documented dictionary key (the generated Rust field).

use std::collections::BTreeMap;

use crate::model::{self, Arg, Interface};

fn args(list: &[Arg]) -> Vec<(String, String, bool)> {
    list.iter()
        .map(|a| (a.name.clone(), a.signature.clone(), a.input))
        .collect()
}

fn show(args: &[(String, String, bool)]) -> String {
    args.iter()
        .map(|(n, t, input)| format!("{} {t} {n}", if *input { "in" } else { "out" }))
        .collect::<Vec<_>>()
        .join(", ")
}

fn compare_interface(old: &Interface, new: &Interface, out: &mut Vec<String>) {
    let name = &old.name;
    for m in &old.methods {
        match new.methods.iter().find(|n| n.name == m.name) {
            None => out.push(format!("{name}.{}: method removed", m.name)),
            Some(n) if args(&n.args) != args(&m.args) => out.push(format!(
                "{name}.{}: arguments changed from ({}) to ({})",
                m.name,
                show(&args(&m.args)),
                show(&args(&n.args))
            )),
            Some(_) => {}
        }
    }
    for p in &old.properties {
        match new.properties.iter().find(|n| n.name == p.name) {
            None => out.push(format!("{name}.{}: property removed", p.name)),
            Some(n) if n.signature != p.signature => out.push(format!(
                "{name}.{}: property type changed from {} to {}",
                p.name, p.signature, n.signature
            )),
            Some(n) if (n.read, n.write) != (p.read, p.write) => {
                out.push(format!("{name}.{}: property access changed", p.name))
            }
            Some(_) => {}
        }
    }
    for s in &old.signals {
        match new.signals.iter().find(|n| n.name == s.name) {
            None => out.push(format!("{name}.{}: signal removed", s.name)),
            Some(n) if args(&n.args) != args(&s.args) => out.push(format!(
                "{name}.{}: signal arguments changed from ({}) to ({})",
                s.name,
                show(&args(&s.args)),
                show(&args(&n.args))
            )),
            Some(_) => {}
        }
    }
}

/// Lists the incompatible changes from `old_xml` to `new_xml`; empty means compatible.
pub fn api_diff(old_xml: &str, new_xml: &str) -> Result<Vec<String>, String> {
    let old = model::build(old_xml).map_err(|e| format!("old interface: {e}"))?;
    let new = model::build(new_xml).map_err(|e| format!("new interface: {e}"))?;
    let mut out = Vec::new();
    for i in &old.interfaces {
        match new.interfaces.iter().find(|n| n.name == i.name) {
            None => out.push(format!("{}: interface removed", i.name)),
            Some(n) => compare_interface(i, n, &mut out),
        }
    }
    let new_dicts: BTreeMap<&str, &model::DictSchema> =
        new.dicts.iter().map(|d| (d.name.as_str(), d)).collect();
    for d in &old.dicts {
        let Some(n) = new_dicts.get(d.name.as_str()) else {
            out.push(format!("dictionary {}: removed", d.name));
            continue;
        };
        for k in &d.keys {
            match n.keys.iter().find(|x| x.key == k.key) {
                None => out.push(format!("dictionary {}: key '{}' removed", d.name, k.key)),
                Some(x) if x.signature != k.signature => out.push(format!(
                    "dictionary {}: key '{}' changed type from {} to {}",
                    d.name, k.key, k.signature, x.signature
                )),
                Some(_) => {}
            }
        }
    }
    Ok(out)
}
