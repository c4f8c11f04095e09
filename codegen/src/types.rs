//! D-Bus signature → Rust type mapping, one function per role a type plays in generated code.
//!
//! Roles differ only in borrowing: proxy inputs borrow (`&str`, `&[&str]`), everything received
//! or returned is owned. A top-level `a{sv}`/`aa{sv}` with a dictionary schema becomes the typed
//! dictionary struct in every role.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use zbus::Signature;

/// How file descriptors are represented: as zbus's own type (method arguments), or as the API
/// crate's `UnixFd` (dictionary values, which must implement `DictValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fds {
    /// `zbus::OwnedFd`.
    Zbus,
    /// `rpmostree_api::dict::UnixFd`.
    Dict,
}

/// The path of a generated dictionary type, seen from an interface module.
pub(crate) fn dict_path(name: &str) -> TokenStream {
    let ident = format_ident!("{}", name);
    quote!(super::dicts::#ident)
}

/// An owned Rust type for `sig`. `dict` names the schema of a top-level `a{sv}`/`aa{sv}`.
pub(crate) fn owned(sig: &Signature, dict: Option<&str>, fds: Fds) -> TokenStream {
    if let Some(d) = dict {
        let path = dict_path(d);
        return match sig {
            Signature::Array(_) if sig.to_string() == "aa{sv}" => quote!(::std::vec::Vec<#path>),
            _ => path,
        };
    }
    match sig {
        Signature::U8 => quote!(u8),
        Signature::Bool => quote!(bool),
        Signature::I16 => quote!(i16),
        Signature::U16 => quote!(u16),
        Signature::I32 => quote!(i32),
        Signature::U32 => quote!(u32),
        Signature::I64 => quote!(i64),
        Signature::U64 => quote!(u64),
        Signature::F64 => quote!(f64),
        Signature::Str => quote!(::std::string::String),
        Signature::Signature => quote!(zbus::Signature),
        Signature::ObjectPath => quote!(zbus::OwnedObjectPath),
        Signature::Variant => quote!(zbus::OwnedVariant),
        Signature::Fd => match fds {
            Fds::Zbus => quote!(zbus::OwnedFd),
            Fds::Dict => quote!(::rpmostree_api::dict::UnixFd),
        },
        Signature::Array(child) if fds == Fds::Dict && matches!(&**child, Signature::Fd) => {
            quote!(::rpmostree_api::dict::UnixFdList)
        }
        Signature::Array(child) => {
            let inner = owned(child, None, fds);
            quote!(::std::vec::Vec<#inner>)
        }
        Signature::Dict { key, value } => {
            let k = owned(key, None, fds);
            let v = owned(value, None, fds);
            quote!(::std::collections::HashMap<#k, #v>)
        }
        Signature::Structure(fields) => {
            let fields: Vec<_> = fields.iter().map(|f| owned(f, None, fds)).collect();
            quote!((#(#fields,)*))
        }
        other => {
            let text = other.to_string();
            quote!(compile_error!(concat!("unsupported D-Bus type ", #text)))
        }
    }
}

/// A borrowed Rust type for a method input on the proxy side.
pub(crate) fn proxy_input(sig: &Signature, dict: Option<&str>) -> TokenStream {
    if dict.is_some() {
        let owned = owned(sig, dict, Fds::Zbus);
        return quote!(&#owned);
    }
    match sig {
        Signature::Str => quote!(&str),
        Signature::ObjectPath => quote!(&zbus::ObjectPath<'_>),
        Signature::Variant => quote!(&zbus::Variant<'_>),
        Signature::Fd => quote!(zbus::Fd<'_>),
        Signature::Array(child) if matches!(&**child, Signature::Str) => {
            quote!(&[&str])
        }
        Signature::Array(child) if matches!(&**child, Signature::Fd) => {
            quote!(&[zbus::Fd<'_>])
        }
        Signature::Dict { key, value }
            if matches!(&**key, Signature::Str) && matches!(&**value, Signature::Variant) =>
        {
            quote!(&::std::collections::HashMap<&str, &zbus::Variant<'_>>)
        }
        s if is_copy(s) => owned(s, None, Fds::Zbus),
        s => {
            let owned = owned(s, None, Fds::Zbus);
            quote!(&#owned)
        }
    }
}

/// A borrowed type for a signal argument when emitting it.
pub(crate) fn emit_input(sig: &Signature) -> TokenStream {
    match sig {
        Signature::Str => quote!(&str),
        Signature::Array(child) if matches!(&**child, Signature::Str) => quote!(&[&str]),
        Signature::Array(child) if !matches!(&**child, Signature::Dict { .. }) => {
            let inner = owned(child, None, Fds::Zbus);
            quote!(&[#inner])
        }
        s if is_copy(s) => owned(s, None, Fds::Zbus),
        s => {
            let owned = owned(s, None, Fds::Zbus);
            quote!(&#owned)
        }
    }
}

/// Basic types passed by value.
pub(crate) fn is_copy(sig: &Signature) -> bool {
    matches!(
        sig,
        Signature::U8
            | Signature::Bool
            | Signature::I16
            | Signature::U16
            | Signature::I32
            | Signature::U32
            | Signature::I64
            | Signature::U64
            | Signature::F64
    ) || matches!(sig, Signature::Structure(f) if f.iter().all(is_copy))
}
