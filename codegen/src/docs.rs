//! Documentation text for generated items: XML comments made safe for rustdoc, and the
//! argument and option-key sections appended to method docs.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::{Arg, DictSchema, Method};

/// Escapes characters that rustdoc would read as links or HTML, outside of code spans.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(part);
            continue;
        }
        for c in part.chars() {
            match c {
                '[' => out.push_str("\\["),
                ']' => out.push_str("\\]"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
    }
    out
}

/// `#[doc = "..."]` attributes, one per line.
pub(crate) fn attrs(text: &str) -> TokenStream {
    let lines = text.lines().map(|l| {
        let line = if l.is_empty() {
            String::new()
        } else {
            format!(" {l}")
        };
        quote!(#[doc = #line])
    });
    quote!(#(#lines)*)
}

/// `#![doc = "..."]` attributes, one per line, for a module.
pub(crate) fn inner_attrs(text: &str) -> TokenStream {
    let lines = text.lines().map(|l| {
        let line = if l.is_empty() {
            String::new()
        } else {
            format!(" {l}")
        };
        quote!(#![doc = #line])
    });
    quote!(#(#lines)*)
}

/// The full documentation of a method: its own text, its arguments and, for every argument with a
/// dictionary schema, the keys it accepts or returns.
pub(crate) fn method(iface: &str, m: &Method, dicts: &[DictSchema], extra: Option<&str>) -> String {
    let mut out = match &m.doc {
        Some(d) => escape(d),
        None => format!("Calls `{iface}.{}`.", m.name),
    };
    out.push_str(&format!("\n\nD-Bus: `{iface}.{}`", m.name));
    let ins: Vec<&Arg> = m.inputs().collect();
    let outs: Vec<&Arg> = m.outputs().collect();
    out.push_str(&format!(
        " ({}) → ({})",
        signature_list(&ins),
        signature_list(&outs)
    ));
    if m.unix_fd {
        out.push_str("; accepts Unix file descriptors");
    }
    out.push('.');
    if let Some(e) = extra {
        out.push_str("\n\n");
        out.push_str(e);
    }
    let documented: Vec<&Arg> = m.args.iter().filter(|a| a.doc.is_some()).collect();
    if !documented.is_empty() {
        out.push_str("\n\n# Arguments\n");
        for a in documented {
            let dir = if a.input { "in" } else { "out" };
            out.push_str(&format!(
                "\n- `{}` ({dir}, `{}`): {}",
                a.name,
                a.signature,
                one_line(&escape(a.doc.as_deref().unwrap_or_default()))
            ));
        }
    }
    for a in m.args.iter().filter(|a| a.dict.is_some()) {
        let name = a.dict.as_deref().unwrap_or_default();
        out.push_str(&format!(
            "\n\n# Keys of `{}` ([`{name}`](super::dicts::{name}))\n",
            a.name
        ));
        out.push_str(&keys(dicts, name));
    }
    out
}

/// A bullet list of a dictionary's keys, or a sentence saying it has none.
pub(crate) fn keys(dicts: &[DictSchema], name: &str) -> String {
    let Some(schema) = dicts.iter().find(|d| d.name == name) else {
        return String::new();
    };
    if schema.keys.is_empty() {
        return "\nNo keys are defined; unknown keys are passed through.".to_owned();
    }
    schema
        .keys
        .iter()
        .map(|k| {
            format!(
                "\n- `{}` (`{}`): {}",
                k.key,
                k.signature,
                escape(&k.meaning)
            )
        })
        .collect()
}

fn signature_list(args: &[&Arg]) -> String {
    args.iter()
        .map(|a| format!("`{}` {}", a.signature, a.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
