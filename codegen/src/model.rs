//! The generator's intermediate model: interfaces, members, arguments and dictionary schemas,
//! with Rust names and documentation attached.
//!
//! It is built from zbus_xml's parse (names, types, directions, annotations) and the comment
//! pass (documentation). Everything downstream emits code from this model only.

use std::collections::HashMap;

use zbus::Signature;
use zbus_xml::{ArgDirection, Node};

use crate::comments::{self, Location};

/// Annotation prefix of the project's schema annotations.
pub(crate) const NS: &str = "org.projectatomic.rpmostree1.";
/// Annotation naming the Rust type of an `a{sv}`/`aa{sv}` argument or property.
pub(crate) const DICT: &str = "org.projectatomic.rpmostree1.Dict";
/// Prefix of the annotations that document one key of a dictionary.
pub(crate) const DICT_KEY: &str = "org.projectatomic.rpmostree1.Dict.Key.";
/// The out argument name that marks a transaction-starting method.
pub(crate) const TRANSACTION_ADDRESS: &str = "transaction_address";

/// The whole interface file.
#[derive(Debug)]
pub struct Model {
    /// Interfaces in file order.
    pub interfaces: Vec<Interface>,
    /// Dictionary schemas in order of first appearance.
    pub dicts: Vec<DictSchema>,
}

/// One D-Bus interface.
#[derive(Debug)]
pub struct Interface {
    /// Full D-Bus name.
    pub name: String,
    /// Last dotted segment, used for Rust type names (`OSExperimental`).
    pub short: String,
    /// Rust module name (`os_experimental`).
    pub module: String,
    /// Documentation from the preceding comment.
    pub doc: Option<String>,
    /// Well-known bus name the interface is served under, if fixed.
    pub default_service: Option<String>,
    /// Object path the interface is served at, if fixed.
    pub default_path: Option<String>,
    /// Set for interfaces served on a peer-to-peer connection: the object path there.
    pub peer_path: Option<String>,
    /// Methods in file order.
    pub methods: Vec<Method>,
    /// Properties in file order.
    pub properties: Vec<Property>,
    /// Signals in file order.
    pub signals: Vec<Signal>,
}

/// One method.
#[derive(Debug)]
pub struct Method {
    /// D-Bus name.
    pub name: String,
    /// Rust name (snake case).
    pub rust: String,
    /// Documentation.
    pub doc: Option<String>,
    /// Arguments in order, both directions.
    pub args: Vec<Arg>,
    /// Whether the method is annotated for Unix fd passing.
    pub unix_fd: bool,
}

impl Method {
    /// The input arguments.
    pub fn inputs(&self) -> impl Iterator<Item = &Arg> {
        self.args.iter().filter(|a| a.input)
    }

    /// The output arguments.
    pub fn outputs(&self) -> impl Iterator<Item = &Arg> {
        self.args.iter().filter(|a| !a.input)
    }

    /// Whether the method starts a transaction (has a `transaction_address` out argument).
    pub fn starts_transaction(&self) -> bool {
        self.outputs()
            .any(|a| a.name == TRANSACTION_ADDRESS && a.signature == "s")
    }
}

/// One argument of a method or signal.
#[derive(Debug)]
pub struct Arg {
    /// D-Bus name.
    pub name: String,
    /// Rust name (snake case, not escaped).
    pub rust: String,
    /// D-Bus signature text.
    pub signature: String,
    /// Parsed signature.
    pub ty: Signature,
    /// In (method input) or out (method output, signal argument).
    pub input: bool,
    /// Documentation.
    pub doc: Option<String>,
    /// The dictionary type, for `a{sv}`/`aa{sv}` with a `Dict` annotation.
    pub dict: Option<String>,
}

/// One property.
#[derive(Debug)]
pub struct Property {
    /// D-Bus name.
    pub name: String,
    /// Rust name (snake case).
    pub rust: String,
    /// D-Bus signature text.
    pub signature: String,
    /// Parsed signature.
    pub ty: Signature,
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Documentation.
    pub doc: Option<String>,
    /// The dictionary type, for `a{sv}`/`aa{sv}` with a `Dict` annotation.
    pub dict: Option<String>,
}

/// One signal.
#[derive(Debug)]
pub struct Signal {
    /// D-Bus name.
    pub name: String,
    /// Rust name (snake case).
    pub rust: String,
    /// Documentation.
    pub doc: Option<String>,
    /// Arguments.
    pub args: Vec<Arg>,
}

/// A dictionary schema: the merged keys of every `Dict` annotation with one type name.
#[derive(Debug)]
pub struct DictSchema {
    /// Rust type name.
    pub name: String,
    /// Keys in order of first appearance.
    pub keys: Vec<DictKey>,
    /// Where the dictionary is used, as `Interface.Member` strings (for documentation).
    pub used_by: Vec<String>,
    /// Whether any use is a method input (the type is then also an options builder).
    pub is_input: bool,
}

/// One documented key.
#[derive(Debug)]
pub struct DictKey {
    /// The key.
    pub key: String,
    /// D-Bus signature text.
    pub signature: String,
    /// Parsed signature.
    pub ty: Signature,
    /// One-line meaning.
    pub meaning: String,
}

/// Converts a D-Bus or annotation name to snake case: `GetOS` → `get_os`,
/// `OSExperimental` → `os_experimental`, `allow-downgrade` → `allow_downgrade`.
pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '-' || c == '.' || c == '_' {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if (prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower))
                && !out.ends_with('_')
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Converts a snake, kebab or D-Bus name to upper camel case: `task-begin` → `TaskBegin`.
pub fn camel(name: &str) -> String {
    let mut out = String::new();
    for part in snake(name).split('_') {
        let mut cs = part.chars();
        if let Some(first) = cs.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(cs);
        }
    }
    out
}

fn annotation<'a>(annotations: &'a [zbus_xml::Annotation<'_>], name: &str) -> Option<&'a str> {
    annotations
        .iter()
        .find(|a| a.name() == name)
        .map(|a| a.value())
}

/// Builds the model from the interface XML.
pub fn build(xml: &str) -> Result<Model, String> {
    let node = Node::try_from(xml).map_err(|e| format!("cannot parse the interface XML: {e}"))?;
    let docs = comments::collect(xml)?;
    let mut dicts = DictCollector::default();
    let mut interfaces = Vec::new();

    for iface in node.interfaces() {
        let name = iface.name().to_string();
        let short = name.rsplit('.').next().unwrap_or(&name).to_owned();
        let iface_annotations: Vec<_> = iface.annotations().cloned().collect();
        for a in &iface_annotations {
            if a.name().starts_with(NS)
                && !matches!(
                    &a.name()[NS.len()..],
                    "DefaultService" | "DefaultPath" | "PeerToPeer"
                )
            {
                return Err(format!("{name}: unknown annotation {}", a.name()));
            }
        }
        let mut out = Interface {
            doc: docs.get(&Location::Interface(name.clone())).cloned(),
            module: snake(&short),
            default_service: annotation(&iface_annotations, &format!("{NS}DefaultService"))
                .map(str::to_owned),
            default_path: annotation(&iface_annotations, &format!("{NS}DefaultPath"))
                .map(str::to_owned),
            peer_path: annotation(&iface_annotations, &format!("{NS}PeerToPeer"))
                .map(str::to_owned),
            short,
            methods: Vec::new(),
            properties: Vec::new(),
            signals: Vec::new(),
            name: name.clone(),
        };

        for m in iface.methods() {
            let mname = m.name().to_string();
            let owner = format!("{}.{}", out.short, mname);
            let mut args = Vec::new();
            for (i, a) in m.args().iter().enumerate() {
                let input = matches!(a.direction(), Some(ArgDirection::In) | None);
                let arg = build_arg(
                    a,
                    i,
                    input,
                    docs.get(&Location::Arg(name.clone(), "method", mname.clone(), i)),
                    &owner,
                    &mut dicts,
                )?;
                args.push(arg);
            }
            out.methods.push(Method {
                rust: snake(&mname),
                doc: docs
                    .get(&Location::Member(name.clone(), "method", mname.clone()))
                    .cloned(),
                unix_fd: annotation(m.annotations(), "org.gtk.GDBus.C.UnixFD") == Some("true"),
                name: mname,
                args,
            });
        }
        for p in iface.properties() {
            let pname = p.name().to_string();
            let signature = p.ty().to_string();
            let dict = dicts.register(
                p.annotations(),
                &signature,
                &format!("{}.{}", out.short, pname),
                false,
            )?;
            out.properties.push(Property {
                rust: snake(&pname),
                ty: p.ty().clone(),
                signature,
                read: p.access().read(),
                write: p.access().write(),
                doc: docs
                    .get(&Location::Member(name.clone(), "property", pname.clone()))
                    .cloned(),
                dict,
                name: pname,
            });
        }
        for s in iface.signals() {
            let sname = s.name().to_string();
            let owner = format!("{}.{}", out.short, sname);
            let mut args = Vec::new();
            for (i, a) in s.args().iter().enumerate() {
                args.push(build_arg(
                    a,
                    i,
                    false,
                    docs.get(&Location::Arg(name.clone(), "signal", sname.clone(), i)),
                    &owner,
                    &mut dicts,
                )?);
            }
            out.signals.push(Signal {
                rust: snake(&sname),
                doc: docs
                    .get(&Location::Member(name.clone(), "signal", sname.clone()))
                    .cloned(),
                name: sname,
                args,
            });
        }
        interfaces.push(out);
    }
    if interfaces.iter().filter(|i| i.peer_path.is_some()).count() > 1 {
        return Err("at most one interface may be annotated PeerToPeer".into());
    }
    Ok(Model {
        interfaces,
        dicts: dicts.finish(),
    })
}

fn build_arg(
    a: &zbus_xml::Arg<'_>,
    index: usize,
    input: bool,
    doc: Option<&String>,
    owner: &str,
    dicts: &mut DictCollector,
) -> Result<Arg, String> {
    let name = a
        .name()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("arg_{index}"));
    let signature = a.ty().to_string();
    let dict = dicts.register(a.annotations(), &signature, owner, input)?;
    Ok(Arg {
        rust: snake(&name),
        ty: a.ty().clone(),
        signature,
        input,
        doc: doc.cloned(),
        dict,
        name,
    })
}

#[derive(Default)]
struct DictCollector {
    order: Vec<String>,
    schemas: HashMap<String, DictSchema>,
}

impl DictCollector {
    /// Records the `Dict` annotations of one argument or property and returns its dict type.
    fn register(
        &mut self,
        annotations: &[zbus_xml::Annotation<'_>],
        signature: &str,
        owner: &str,
        input: bool,
    ) -> Result<Option<String>, String> {
        let Some(name) = annotation(annotations, DICT) else {
            if let Some(a) = annotations.iter().find(|a| a.name().starts_with(NS)) {
                return Err(format!("{owner}: {} needs a {DICT} annotation", a.name()));
            }
            return Ok(None);
        };
        if signature != "a{sv}" && signature != "aa{sv}" {
            return Err(format!(
                "{owner}: {DICT} is only allowed on a{{sv}} and aa{{sv}}, not {signature}"
            ));
        }
        if !is_rust_type_name(name) {
            return Err(format!("{owner}: '{name}' is not a valid type name"));
        }
        if !self.schemas.contains_key(name) {
            self.order.push(name.to_owned());
            self.schemas.insert(
                name.to_owned(),
                DictSchema {
                    name: name.to_owned(),
                    keys: Vec::new(),
                    used_by: Vec::new(),
                    is_input: false,
                },
            );
        }
        let schema = self.schemas.get_mut(name).ok_or("schema vanished")?;
        schema.used_by.push(owner.to_owned());
        schema.is_input |= input;
        for a in annotations {
            let Some(key) = a.name().strip_prefix(DICT_KEY) else {
                if a.name().starts_with(NS) && a.name() != DICT {
                    return Err(format!("{owner}: unknown annotation {}", a.name()));
                }
                continue;
            };
            let (sig, meaning) = a.value().split_once(": ").ok_or_else(|| {
                format!(
                    "{owner}: key '{key}' must read 'SIGNATURE: meaning', got '{}'",
                    a.value()
                )
            })?;
            let ty = Signature::try_from(sig)
                .map_err(|e| format!("{owner}: key '{key}': bad signature '{sig}': {e}"))?;
            if key.is_empty() || snake(key).is_empty() {
                return Err(format!("{owner}: empty key name"));
            }
            match schema.keys.iter().find(|k| k.key == key) {
                Some(existing) if existing.signature != sig => {
                    return Err(format!(
                        "{owner}: key '{key}' of {name} is '{sig}' here but '{}' elsewhere",
                        existing.signature
                    ));
                }
                Some(_) => {}
                None => schema.keys.push(DictKey {
                    key: key.to_owned(),
                    signature: sig.to_owned(),
                    ty,
                    meaning: meaning.trim().to_owned(),
                }),
            }
        }
        Ok(Some(name.to_owned()))
    }

    fn finish(mut self) -> Vec<DictSchema> {
        self.order
            .iter()
            .filter_map(|n| self.schemas.remove(n))
            .collect()
    }
}

fn is_rust_type_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_handles_acronyms_and_dashes() {
        assert_eq!(snake("GetOS"), "get_os");
        assert_eq!(snake("OSExperimental"), "os_experimental");
        assert_eq!(snake("RefreshMd"), "refresh_md");
        assert_eq!(snake("allow-downgrade"), "allow_downgrade");
        assert_eq!(snake("ActiveTransactionPath"), "active_transaction_path");
        assert_eq!(
            snake("existing_kernel_arg_string"),
            "existing_kernel_arg_string"
        );
        assert_eq!(camel("task-begin"), "TaskBegin");
        assert_eq!(camel("OS"), "Os");
    }
}
