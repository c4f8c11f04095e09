//! Token emission: for each interface a module with its client proxy, server handler trait,
//! generic `#[zbus::interface]` adapter, typed signal emitters and transaction helpers; and one
//! module with every dictionary type.
//!
//! Generated code names the API crate's runtime as `::rpmostree_api` (the crate declares
//! `extern crate self as rpmostree_api`), so the same output compiles inside the crate and in
//! the generator's golden tests.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::docs;
use crate::model::{Arg, DictSchema, Interface, Method, Model, Property, Signal, snake};
use crate::types::{self, Fds};

/// A Rust identifier, raw when the name is a keyword.
pub(crate) fn ident(name: &str) -> Ident {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
        "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop",
        "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
        "static", "struct", "super", "trait", "true", "try", "type", "typeof", "unsafe", "unsized",
        "use", "virtual", "where", "while", "yield",
    ];
    if KEYWORDS.contains(&name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

/// The module of one interface.
pub(crate) fn interface(model: &Model, iface: &Interface) -> TokenStream {
    let module_doc = docs::inner_attrs(&format!(
        "`{}`: {}\n\nClient proxy [`{}Proxy`], server trait [`{}Handler`] and its adapter [`{}Interface`].",
        iface.name,
        iface
            .doc
            .as_deref()
            .map(docs::escape)
            .unwrap_or_else(|| "no description.".into()),
        iface.short,
        iface.short,
        iface.short,
    ));
    let name = &iface.name;
    let proxy = proxy(model, iface);
    let handler = handler(model, iface);
    let adapter = adapter(iface);
    let emitter = signal_emitter(iface);
    let helpers = transaction_helpers(model, iface);
    let blocking = blocking_proxy(iface);
    let peer = iface.peer_path.as_ref().map(|_| peer_client(iface));
    let methods = method_enum(iface);
    quote! {
        #module_doc

        /// The D-Bus name of this interface.
        pub const INTERFACE: &str = #name;

        #methods

        #proxy
        #handler
        #adapter
        #emitter
        #helpers
        #blocking
        #peer
    }
}

/// The interface's methods as an enum, so that a `match` over them (an authorization table,
/// say) is checked by the compiler to cover every method.
fn method_enum(iface: &Interface) -> TokenStream {
    let name = format_ident!("{}Method", iface.short);
    let doc = docs::attrs(&format!(
        "The methods of `{}`, one variant each. A `match` over it without a wildcard arm is \
         checked by the compiler to cover every method, including ones added to the XML later.",
        iface.name
    ));
    let variants: Vec<Ident> = iface.methods.iter().map(|m| ident(&m.name)).collect();
    let names: Vec<&str> = iface.methods.iter().map(|m| m.name.as_str()).collect();
    let variant_docs = names
        .iter()
        .map(|n| docs::attrs(&format!("`{n}`.")))
        .collect::<Vec<_>>();
    quote! {
        #doc
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum #name {
            #( #variant_docs #variants, )*
        }

        impl #name {
            /// Every method, in the order of the XML.
            pub const ALL: &'static [Self] = &[ #( Self::#variants ),* ];

            /// The D-Bus member name.
            pub fn name(self) -> &'static str {
                match self {
                    #( Self::#variants => #names, )*
                }
            }

            /// The method with this D-Bus member name, if the interface has one.
            pub fn from_name(name: &str) -> ::std::option::Option<Self> {
                match name {
                    #( #names => ::std::option::Option::Some(Self::#variants), )*
                    _ => ::std::option::Option::None,
                }
            }
        }
    }
}

/// A synchronous wrapper of the proxy for simple programs (zbus 6 has no blocking API).
fn blocking_proxy(iface: &Interface) -> TokenStream {
    let proxy = format_ident!("{}Proxy", iface.short);
    let blocking = format_ident!("{}ProxyBlocking", iface.short);
    let doc = docs::attrs(&format!(
        "A blocking wrapper of [`{proxy}`] for simple programs: each call runs the async one to \
         completion on zbus's shared runtime (`zbus::block_on`).\n\n\
         Do not use it from inside an async runtime; use [`{proxy}`] there."
    ));
    let methods = iface.methods.iter().map(|m| {
        let rust = ident(&m.rust);
        let params = m.inputs().map(|a| {
            let n = ident(&a.rust);
            let t = types::proxy_input(&a.ty, a.dict.as_deref());
            quote!(#n: #t)
        });
        let names = m.inputs().map(|a| ident(&a.rust));
        let ret = returns(m.outputs().collect());
        let doc = docs::attrs(&format!("Blocking [`{proxy}::{}`].", m.rust));
        quote! {
            #doc
            pub fn #rust(&self, #(#params),*) -> zbus::Result<#ret> {
                zbus::block_on(self.0.#rust(#(#names),*))
            }
        }
    });
    let props = iface.properties.iter().filter(|p| p.read).map(|p| {
        let rust = ident(&p.rust);
        let t = types::owned(&p.ty, p.dict.as_deref(), Fds::Zbus);
        let doc = docs::attrs(&format!("Blocking [`{proxy}::{}`].", p.rust));
        quote! {
            #doc
            pub fn #rust(&self) -> zbus::Result<#t> {
                zbus::block_on(self.0.#rust())
            }
        }
    });
    let ctor = if iface.default_path.is_some() || iface.peer_path.is_some() {
        quote! {
            /// Creates the proxy at its default destination and path.
            pub fn new(connection: &zbus::Connection) -> zbus::Result<Self> {
                zbus::block_on(#proxy::new(connection)).map(Self)
            }
        }
    } else {
        quote! {
            /// Creates the proxy for the object at `path`.
            pub fn new(connection: &zbus::Connection, path: zbus::OwnedObjectPath) -> zbus::Result<Self> {
                zbus::block_on(#proxy::new(connection, path)).map(Self)
            }
        }
    };
    quote! {
        #doc
        #[derive(Debug, Clone)]
        pub struct #blocking<'p>(pub #proxy<'p>);

        impl #blocking<'_> {
            #ctor
            #(#methods)*
            #(#props)*
        }
    }
}

fn proxy(model: &Model, iface: &Interface) -> TokenStream {
    let name = &iface.name;
    let trait_ident = format_ident!("{}", iface.short);
    let service = iface.default_service.clone().or_else(|| {
        // zbus needs a destination even on a peer-to-peer connection, where it is ignored.
        iface.peer_path.as_ref().and_then(|_| {
            model
                .interfaces
                .iter()
                .find_map(|i| i.default_service.clone())
        })
    });
    let path = iface
        .default_path
        .clone()
        .or_else(|| iface.peer_path.clone());
    let mut opts = vec![quote!(interface = #name)];
    if let Some(s) = &service {
        opts.push(quote!(default_service = #s));
    }
    if let Some(p) = &path {
        opts.push(quote!(default_path = #p));
    }
    if service.is_none() || path.is_none() {
        opts.push(quote!(assume_defaults = false));
    }
    let doc = docs::attrs(&format!(
        "Client proxy for `{}`{}.",
        name,
        match (&service, &path, &iface.peer_path) {
            (_, _, Some(p)) => format!(", at `{p}` on a peer-to-peer connection"),
            (Some(s), Some(p), None) => format!(", served by `{s}` at `{p}`"),
            (Some(s), None, None) => format!(", served by `{s}`; the object path must be given"),
            _ => String::new(),
        }
    ));
    let methods = iface.methods.iter().map(|m| {
        let doc = docs::attrs(&docs::method(&iface.short, m, &model.dicts, None));
        let rust = ident(&m.rust);
        let dname = &m.name;
        let args = m.inputs().map(|a| {
            let n = ident(&a.rust);
            let t = types::proxy_input(&a.ty, a.dict.as_deref());
            quote!(#n: #t)
        });
        let ret = returns(m.outputs().collect());
        quote! {
            #doc
            #[zbus(name = #dname)]
            fn #rust(&self, #(#args),*) -> zbus::Result<#ret>;
        }
    });
    let props = iface.properties.iter().filter(|p| p.read).map(|p| {
        let doc = docs::attrs(&property_doc(model, p));
        let rust = ident(&p.rust);
        let dname = &p.name;
        let t = types::owned(&p.ty, p.dict.as_deref(), Fds::Zbus);
        let setter = p.write.then(|| {
            let set = format_ident!("set_{}", p.rust);
            quote! {
                #[doc = " Sets the property."]
                #[zbus(property, name = #dname)]
                fn #set(&self, value: #t) -> zbus::Result<()>;
            }
        });
        quote! {
            #doc
            #[zbus(property, name = #dname)]
            fn #rust(&self) -> zbus::Result<#t>;
            #setter
        }
    });
    let signals = iface.signals.iter().map(|s| {
        let doc = docs::attrs(&signal_doc(s));
        let rust = ident(&s.rust);
        let dname = &s.name;
        let args = s.args.iter().map(|a| {
            let n = ident(&a.rust);
            let t = match &a.ty {
                zbus::Signature::Str => quote!(&str),
                ty => types::owned(ty, a.dict.as_deref(), Fds::Zbus),
            };
            quote!(#n: #t)
        });
        quote! {
            #doc
            #[zbus(signal, name = #dname)]
            fn #rust(&self, #(#args),*) -> zbus::Result<()>;
        }
    });
    quote! {
        #doc
        #[zbus::proxy(#(#opts),*)]
        pub trait #trait_ident {
            #(#methods)*
            #(#props)*
            #(#signals)*
        }
    }
}

fn returns(outs: Vec<&Arg>) -> TokenStream {
    let tys: Vec<_> = outs
        .iter()
        .map(|a| types::owned(&a.ty, a.dict.as_deref(), Fds::Zbus))
        .collect();
    match tys.len() {
        0 => quote!(()),
        1 => tys[0].clone(),
        _ => quote!((#(#tys),*)),
    }
}

fn property_doc(model: &Model, p: &Property) -> String {
    let mut out = p
        .doc
        .as_deref()
        .map(docs::escape)
        .unwrap_or_else(|| format!("The `{}` property.", p.name));
    let access = match (p.read, p.write) {
        (true, true) => "readwrite",
        (true, false) => "read",
        _ => "write",
    };
    out.push_str(&format!(
        "\n\nD-Bus property `{}` (`{}`, {access}).",
        p.name, p.signature
    ));
    if let Some(d) = &p.dict {
        out.push_str(&format!("\n\n# Keys ([`{d}`](super::dicts::{d}))\n"));
        out.push_str(&docs::keys(&model.dicts, d));
    }
    out
}

fn signal_doc(s: &Signal) -> String {
    let mut out = s
        .doc
        .as_deref()
        .map(docs::escape)
        .unwrap_or_else(|| format!("The `{}` signal.", s.name));
    let sig: Vec<String> = s
        .args
        .iter()
        .map(|a| format!("`{}` {}", a.signature, a.name))
        .collect();
    out.push_str(&format!(
        "\n\nD-Bus signal `{}` ({}).",
        s.name,
        sig.join(", ")
    ));
    let documented: Vec<&Arg> = s.args.iter().filter(|a| a.doc.is_some()).collect();
    if !documented.is_empty() {
        out.push_str("\n\n# Arguments\n");
        for a in documented {
            out.push_str(&format!(
                "\n- `{}` (`{}`): {}",
                a.name,
                a.signature,
                docs::escape(a.doc.as_deref().unwrap_or_default())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
    }
    out
}

fn handler(model: &Model, iface: &Interface) -> TokenStream {
    let trait_ident = format_ident!("{}Handler", iface.short);
    let doc = docs::attrs(&format!(
        "Server side of `{}`: implement this and serve it with [`{}Interface`].\n\n\
         Every method receives the call's [`CallContext`](::rpmostree_api::CallContext) and \
         returns the API's wire error on failure. Dictionary arguments arrive already checked \
         against their schema.",
        iface.name, iface.short
    ));
    let methods = iface.methods.iter().map(|m| {
        let doc = docs::attrs(&docs::method(&iface.short, m, &model.dicts, None));
        let rust = ident(&m.rust);
        let args = m.inputs().map(|a| {
            let n = ident(&a.rust);
            let t = types::owned(&a.ty, a.dict.as_deref(), Fds::Zbus);
            quote!(#n: #t)
        });
        let ret = returns(m.outputs().collect());
        let names = m.inputs().map(|a| ident(&a.rust));
        let what = format!("{}.{}", iface.short, m.name);
        let unsupported_link =
            format!(" [`{trait_ident}::on_unsupported`] (by default `NotSupported`).");
        quote! {
            #doc
            ///
            /// The default implementation fails with the error of
            #[doc = #unsupported_link]
            fn #rust(
                &self,
                ctx: &::rpmostree_api::CallContext<'_>,
                #(#args),*
            ) -> impl ::std::future::Future<Output = ::rpmostree_api::Result<#ret>> + Send {
                let _ = (#(#names,)*);
                async move { ::std::result::Result::Err(self.on_unsupported(ctx, #what).await) }
            }
        }
    });
    let props = iface.properties.iter().map(|p| {
        let doc = docs::attrs(&property_doc(model, p));
        let rust = ident(&p.rust);
        let t = types::owned(&p.ty, p.dict.as_deref(), Fds::Zbus);
        let what = format!("{}.{}", iface.short, p.name);
        let getter = p.read.then(|| {
            quote! {
                #doc
                ///
                /// The default implementation fails with `org.freedesktop.DBus.Error.NotSupported`.
                fn #rust(&self) -> impl ::std::future::Future<Output = ::rpmostree_api::Result<#t>> + Send {
                    async { ::std::result::Result::Err(::rpmostree_api::Error::not_supported(#what)) }
                }
            }
        });
        let setter = p.write.then(|| {
            let set = format_ident!("set_{}", p.rust);
            let sdoc = format!(" Sets `{}`. The default implementation fails with `NotSupported`.", p.name);
            quote! {
                #[doc = #sdoc]
                fn #set(&self, value: #t) -> impl ::std::future::Future<Output = ::rpmostree_api::Result<()>> + Send {
                    let _ = value;
                    async { ::std::result::Result::Err(::rpmostree_api::Error::not_supported(#what)) }
                }
            }
        });
        quote!(#getter #setter)
    });
    quote! {
        #doc
        pub trait #trait_ident: Send + Sync + 'static {
            /// The error for a method this implementation does not provide; `member` is
            /// `Interface.Method`. The default is `org.freedesktop.DBus.Error.NotSupported`.
            /// Override it to check the caller first (for example, to authorize), so that
            /// unprovided methods fail the same way for every caller as provided ones would.
            fn on_unsupported(
                &self,
                ctx: &::rpmostree_api::CallContext<'_>,
                member: &'static str,
            ) -> impl ::std::future::Future<Output = ::rpmostree_api::Error> + Send {
                let _ = ctx;
                async move { ::rpmostree_api::Error::not_supported(member) }
            }
            #(#methods)*
            #(#props)*
        }
    }
}

fn adapter(iface: &Interface) -> TokenStream {
    let name = &iface.name;
    let handler = format_ident!("{}Handler", iface.short);
    let adapter = format_ident!("{}Interface", iface.short);
    let doc = docs::attrs(&format!(
        "Serves any [`{handler}`] as `{name}` on a zbus object server, e.g. \
         `connection.object_server().at(path, {adapter}(handler))`.\n\n\
         Its introspection is the interface XML's, member for member."
    ));
    let methods = iface.methods.iter().map(adapter_method);
    let props = iface.properties.iter().map(|p| {
        let rust = ident(&p.rust);
        let dname = &p.name;
        let t = types::owned(&p.ty, p.dict.as_deref(), Fds::Zbus);
        let getter = p.read.then(|| {
            quote! {
                #[zbus(property(emits_changed_signal = "true"), name = #dname)]
                async fn #rust(&self) -> ::rpmostree_api::Result<#t> {
                    self.0.#rust().await
                }
            }
        });
        let setter = p.write.then(|| {
            let set = format_ident!("set_{}", p.rust);
            quote! {
                #[zbus(property, name = #dname)]
                async fn #set(&self, value: #t) -> ::rpmostree_api::Result<()> {
                    self.0.#set(value).await
                }
            }
        });
        quote!(#getter #setter)
    });
    let signals = iface.signals.iter().map(|s| {
        let rust = ident(&s.rust);
        let dname = &s.name;
        let args = s.args.iter().map(|a| {
            let n = ident(&a.rust);
            let t = types::emit_input(&a.ty);
            quote!(#n: #t)
        });
        quote! {
            #[zbus(signal, name = #dname)]
            async fn #rust(
                emitter: &zbus::object_server::SignalEmitter<'_>,
                #(#args),*
            ) -> zbus::Result<()> {}
        }
    });
    quote! {
        #doc
        #[derive(Debug)]
        pub struct #adapter<H>(pub H);

        #[zbus::interface(name = #name)]
        impl<H: #handler> #adapter<H> {
            #(#methods)*
            #(#props)*
            #(#signals)*
        }
    }
}

fn adapter_method(m: &Method) -> TokenStream {
    let rust = ident(&m.rust);
    let dname = &m.name;
    let args: Vec<_> = m
        .inputs()
        .map(|a| {
            let n = ident(&a.rust);
            let t = types::owned(&a.ty, a.dict.as_deref(), Fds::Zbus);
            (quote!(#n: #t), quote!(#n))
        })
        .collect();
    let params = args.iter().map(|(p, _)| p);
    let names = args.iter().map(|(_, n)| n);
    let outs: Vec<&Arg> = m.outputs().collect();
    let out_names = outs.iter().map(|a| a.name.as_str());
    let out_attr = (!outs.is_empty()).then(|| quote!(#[zbus(out_args(#(#out_names),*))]));
    let ret = returns(outs);
    quote! {
        #[zbus(name = #dname)]
        #out_attr
        async fn #rust(
            &self,
            #[zbus(header)] __header: zbus::message::Header<'_>,
            #[zbus(connection)] __connection: &zbus::Connection,
            #[zbus(signal_emitter)] __emitter: zbus::object_server::SignalEmitter<'_>,
            #(#params),*
        ) -> ::rpmostree_api::Result<#ret> {
            let ctx = ::rpmostree_api::CallContext::new(&__header, __connection, &__emitter);
            self.0.#rust(&ctx, #(#names),*).await
        }
    }
}

fn signal_emitter(iface: &Interface) -> Option<TokenStream> {
    if iface.signals.is_empty() {
        return None;
    }
    let trait_ident = format_ident!("{}Signals", iface.short);
    let doc = docs::attrs(&format!(
        "Typed emitters for the signals of `{}`, implemented for zbus's `SignalEmitter`.",
        iface.name
    ));
    let decls: Vec<_> = iface
        .signals
        .iter()
        .map(|s| {
            let doc = docs::attrs(&format!("Emits `{}`.", s.name));
            let rust = ident(&s.rust);
            let args = s.args.iter().map(|a| {
                let n = ident(&a.rust);
                let t = types::emit_input(&a.ty);
                quote!(#n: #t)
            });
            quote! {
                #doc
                fn #rust(&self, #(#args),*) -> impl ::std::future::Future<Output = zbus::Result<()>> + Send;
            }
        })
        .collect();
    let impls = iface.signals.iter().map(|s| {
        let rust = ident(&s.rust);
        let dname = &s.name;
        let args = s.args.iter().map(|a| {
            let n = ident(&a.rust);
            let t = types::emit_input(&a.ty);
            quote!(#n: #t)
        });
        let names: Vec<_> = s.args.iter().map(|a| ident(&a.rust)).collect();
        quote! {
            async fn #rust(&self, #(#args),*) -> zbus::Result<()> {
                self.emit(INTERFACE, #dname, &(#(#names,)*)).await
            }
        }
    });
    Some(quote! {
        #doc
        pub trait #trait_ident {
            #(#decls)*
        }

        impl #trait_ident for zbus::object_server::SignalEmitter<'_> {
            #(#impls)*
        }
    })
}

/// Client helpers for the methods that start a transaction.
fn transaction_helpers(model: &Model, iface: &Interface) -> Option<TokenStream> {
    let peer = model.interfaces.iter().find(|i| i.peer_path.is_some())?;
    let client = {
        let module = ident(&peer.module);
        let c = format_ident!("{}Client", peer.short);
        quote!(super::#module::#c)
    };
    let proxy = format_ident!("{}Proxy", iface.short);
    let helpers: Vec<_> = iface
        .methods
        .iter()
        .filter(|m| m.starts_transaction())
        .map(|m| {
            let rust = ident(&m.rust);
            let helper = format_ident!("{}_transaction", m.rust);
            let params = m.inputs().map(|a| {
                let n = ident(&a.rust);
                let t = types::proxy_input(&a.ty, a.dict.as_deref());
                quote!(#n: #t)
            });
            let names: Vec<_> = m.inputs().map(|a| ident(&a.rust)).collect();
            let outs: Vec<&Arg> = m.outputs().collect();
            let doc = docs::attrs(&format!(
                "Calls [`{p}::{r}`] and connects to the transaction it started; see there for the \
                 arguments.\n\nThe returned client is subscribed to the transaction's signals before \
                 anything else happens, so no event is missed; call `start()` on it next.",
                p = proxy,
                r = m.rust
            ));
            if outs.len() == 1 {
                quote! {
                    #doc
                    pub async fn #helper(&self, #(#params),*) -> zbus::Result<#client> {
                        let address = self.#rust(#(#names),*).await?;
                        #client::connect(&address).await
                    }
                }
            } else {
                let binds: Vec<_> = outs
                    .iter()
                    .map(|a| format_ident!("{}", snake(&a.name)))
                    .collect();
                let others: Vec<_> = outs
                    .iter()
                    .zip(&binds)
                    .filter(|(a, _)| a.name != crate::model::TRANSACTION_ADDRESS)
                    .map(|(_, b)| b.clone())
                    .collect();
                let other_tys = outs
                    .iter()
                    .filter(|a| a.name != crate::model::TRANSACTION_ADDRESS)
                    .map(|a| types::owned(&a.ty, a.dict.as_deref(), Fds::Zbus));
                let doc2 = docs::attrs(
                    "\nThe transaction is `None` when the daemon started none (empty address).",
                );
                quote! {
                    #doc
                    #doc2
                    pub async fn #helper(&self, #(#params),*) -> zbus::Result<(#(#other_tys,)* ::std::option::Option<#client>)> {
                        let (#(#binds),*) = self.#rust(#(#names),*).await?;
                        let transaction = if transaction_address.is_empty() {
                            ::std::option::Option::None
                        } else {
                            ::std::option::Option::Some(#client::connect(&transaction_address).await?)
                        };
                        ::std::result::Result::Ok((#(#others,)* transaction))
                    }
                }
            }
        })
        .collect();
    if helpers.is_empty() {
        return None;
    }
    Some(quote! {
        impl #proxy<'_> {
            #(#helpers)*
        }
    })
}

/// The event enum, ordered event stream and connection helper of the peer-to-peer interface.
fn peer_client(iface: &Interface) -> TokenStream {
    let event = format_ident!("{}Event", iface.short);
    let events = format_ident!("{}Events", iface.short);
    let client = format_ident!("{}Client", iface.short);
    let proxy = format_ident!("{}Proxy", iface.short);
    let variants = iface.signals.iter().map(|s| {
        let v = format_ident!("{}", crate::model::camel(&s.name));
        let doc = docs::attrs(&signal_doc(s));
        if s.args.is_empty() {
            quote!(#doc #v,)
        } else {
            let fields = s.args.iter().map(|a| {
                let n = ident(&a.rust);
                let t = types::owned(&a.ty, a.dict.as_deref(), Fds::Zbus);
                let d = a
                    .doc
                    .as_deref()
                    .map(docs::escape)
                    .unwrap_or_else(|| format!("The `{}` argument.", a.name));
                let d = docs::attrs(&d);
                quote!(#d #n: #t)
            });
            quote!(#doc #v { #(#fields),* },)
        }
    });
    let arms = iface.signals.iter().map(|s| {
        let v = format_ident!("{}", crate::model::camel(&s.name));
        let dname = &s.name;
        if s.args.is_empty() {
            quote!(#dname => #event::#v,)
        } else {
            let names: Vec<_> = s.args.iter().map(|a| ident(&a.rust)).collect();
            let tys = s
                .args
                .iter()
                .map(|a| types::owned(&a.ty, a.dict.as_deref(), Fds::Zbus));
            quote! {
                #dname => {
                    let (#(#names,)*): (#(#tys,)*) = body.deserialize()?;
                    #event::#v { #(#names),* }
                }
            }
        }
    });
    let name = &iface.name;
    let event_doc = docs::attrs(&format!(
        "One signal of `{name}`, decoded. Events arrive in the order the peer sent them."
    ));
    quote! {
        #event_doc
        #[derive(Debug, Clone, PartialEq)]
        pub enum #event {
            #(#variants)*
        }

        impl #event {
            /// Decodes a message: `Ok(None)` if it is not a signal of this interface.
            pub fn from_message(message: &zbus::Message) -> zbus::Result<::std::option::Option<Self>> {
                let header = message.header();
                if header.message_type() != zbus::message::Type::Signal
                    || header.interface().map(|i| i.as_str()) != ::std::option::Option::Some(INTERFACE)
                {
                    return ::std::result::Result::Ok(::std::option::Option::None);
                }
                let body = message.body();
                let member = header.member().map(|m| m.as_str()).unwrap_or_default();
                ::std::result::Result::Ok(::std::option::Option::Some(match member {
                    #(#arms)*
                    _ => return ::std::result::Result::Ok(::std::option::Option::None),
                }))
            }
        }

        /// The ordered stream of this interface's signals on one connection.
        ///
        /// One message stream carries every signal, so events keep the order they were sent
        /// in: progress always comes before the final signal.
        pub struct #events {
            inner: ::std::pin::Pin<::std::boxed::Box<dyn ::futures_util::Stream<Item = zbus::Result<#event>> + Send>>,
        }

        impl ::std::fmt::Debug for #events {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(stringify!(#events))
            }
        }

        impl #events {
            /// Subscribes to the signals on `connection`; only signals sent after this call are
            /// seen, so subscribe before asking the peer to start.
            pub fn new(connection: &zbus::Connection) -> Self {
                let stream = ::futures_util::StreamExt::filter_map(
                    zbus::MessageStream::from(connection),
                    |message| {
                        ::std::future::ready(match message {
                            ::std::result::Result::Ok(m) => #event::from_message(&m).transpose(),
                            ::std::result::Result::Err(e) => ::std::option::Option::Some(::std::result::Result::Err(e)),
                        })
                    },
                );
                Self { inner: ::std::boxed::Box::pin(stream) }
            }
        }

        impl ::futures_util::Stream for #events {
            type Item = zbus::Result<#event>;

            fn poll_next(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::option::Option<Self::Item>> {
                self.inner.as_mut().poll_next(cx)
            }
        }

        /// A peer-to-peer connection to one object of this interface: its proxy and its events.
        #[derive(Debug)]
        pub struct #client {
            /// The proxy, on the peer connection.
            pub proxy: #proxy<'static>,
            /// The signals, in order.
            pub events: #events,
            /// The address connected to.
            pub address: ::std::string::String,
        }

        impl #client {
            /// Connects to a peer-to-peer D-Bus address (as returned in `transaction_address`)
            /// and subscribes to its signals.
            pub async fn connect(address: &str) -> zbus::Result<Self> {
                let connection = zbus::connection::Builder::address(address)
                    .p2p()
                    .build()
                    .await?;
                let events = #events::new(&connection);
                let proxy = #proxy::new(&connection).await?;
                ::std::result::Result::Ok(Self { proxy, events, address: address.to_owned() })
            }
        }
    }
}

/// The module holding every dictionary type.
pub(crate) fn dicts(model: &Model) -> TokenStream {
    let items = model.dicts.iter().map(dict);
    quote! {
        #![doc = " Typed dictionaries: one struct per `org.projectatomic.rpmostree1.Dict` schema of the interface XML."]
        #![doc = ""]
        #![doc = " Each struct has one optional field per documented key, an `extra` map for keys the"]
        #![doc = " schema does not list (kept as received, sent as given), builder methods, and the wire"]
        #![doc = " traits that let it stand wherever the D-Bus type is `a{sv}`."]

        #(#items)*
    }
}

fn dict(schema: &DictSchema) -> TokenStream {
    let name = format_ident!("{}", schema.name);
    let name_str = &schema.name;
    let has_fd = schema.keys.iter().any(|k| k.signature.contains('h'));
    let derives = if has_fd {
        quote!(#[derive(Debug, Default, PartialEq)])
    } else {
        quote!(#[derive(Debug, Default, Clone, PartialEq)])
    };
    let mut doc = format!(
        "The `{}` dictionary (D-Bus `a{{sv}}`), used by {}.\n",
        schema.name,
        schema
            .used_by
            .iter()
            .map(|u| format!("`{u}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if schema.keys.is_empty() {
        doc.push_str("\nNo keys are defined yet; unknown keys are kept in `extra`.");
    } else {
        doc.push_str("\n# Keys\n");
        for k in &schema.keys {
            doc.push_str(&format!(
                "\n- `{}` (`{}`): {}",
                k.key,
                k.signature,
                docs::escape(&k.meaning)
            ));
        }
    }
    let doc = docs::attrs(&doc);
    let fields = schema.keys.iter().map(|k| {
        let f = ident(&snake(&k.key));
        let t = types::owned(&k.ty, None, Fds::Dict);
        let d = docs::attrs(&format!(
            "`{}` (`{}`): {}",
            k.key,
            k.signature,
            docs::escape(&k.meaning)
        ));
        quote!(#d pub #f: ::std::option::Option<#t>,)
    });
    let builders = schema.keys.iter().map(|k| {
        let f = ident(&snake(&k.key));
        let t = types::owned(&k.ty, None, Fds::Dict);
        let d = docs::attrs(&format!("Sets `{}`: {}", k.key, docs::escape(&k.meaning)));
        if matches!(k.ty, zbus::Signature::Str) {
            quote! {
                #d
                #[must_use]
                pub fn #f(mut self, value: impl ::std::convert::Into<::std::string::String>) -> Self {
                    self.#f = ::std::option::Option::Some(value.into());
                    self
                }
            }
        } else {
            quote! {
                #d
                #[must_use]
                pub fn #f(mut self, value: #t) -> Self {
                    self.#f = ::std::option::Option::Some(value);
                    self
                }
            }
        }
    });
    let keys = schema.keys.iter().map(|k| {
        let key = &k.key;
        let sig = &k.signature;
        let meaning = &k.meaning;
        quote!(::rpmostree_api::dict::KeySchema { key: #key, signature: #sig, meaning: #meaning },)
    });
    let decode_arms = schema.keys.iter().map(|k| {
        let f = ident(&snake(&k.key));
        let key = &k.key;
        quote! {
            #key => out.#f = ::std::option::Option::Some(
                ::rpmostree_api::dict::decode_key(#name_str, &key, value)?,
            ),
        }
    });
    let unknown = quote! {
        let value = ::rpmostree_api::dict::own_unknown(#name_str, &key, value)?;
        out.extra.insert(key, value);
    };
    let decode = if schema.keys.is_empty() {
        unknown
    } else {
        quote! {
            match key.as_str() {
                #(#decode_arms)*
                _ => { #unknown }
            }
        }
    };
    let encodes = schema.keys.iter().map(|k| {
        let f = ident(&snake(&k.key));
        let key = &k.key;
        quote! {
            if let ::std::option::Option::Some(value) = &self.#f {
                out.push((#key, ::rpmostree_api::dict::DictValue::encode(value)?));
            }
        }
    });
    quote! {
        #doc
        #derives
        pub struct #name {
            #(#fields)*
            /// Keys that are not in the schema, kept as received and sent as given.
            pub extra: ::std::collections::HashMap<::std::string::String, zbus::OwnedVariant>,
        }

        impl #name {
            /// An empty dictionary.
            pub fn new() -> Self {
                Self::default()
            }

            #(#builders)*

            /// Adds a key that is not in the schema (it is sent as is).
            #[must_use]
            pub fn with_extra(mut self, key: impl ::std::convert::Into<::std::string::String>, value: zbus::OwnedVariant) -> Self {
                self.extra.insert(key.into(), value);
                self
            }
        }

        impl ::rpmostree_api::dict::Dict for #name {
            const NAME: &'static str = #name_str;
            const KEYS: &'static [::rpmostree_api::dict::KeySchema] = &[#(#keys)*];

            fn from_variants<'a, I>(entries: I) -> ::std::result::Result<Self, ::rpmostree_api::dict::DictError>
            where
                I: ::std::iter::IntoIterator<Item = (::std::string::String, zbus::Variant<'a>)>,
            {
                let mut out = Self::default();
                for (key, value) in entries {
                    #decode
                }
                ::std::result::Result::Ok(out)
            }

            fn to_variants(&self) -> zbus::Result<::std::vec::Vec<(&str, zbus::Variant<'_>)>> {
                let mut out: ::std::vec::Vec<(&str, zbus::Variant<'_>)> = ::std::vec::Vec::new();
                #(#encodes)*
                ::rpmostree_api::dict::push_unknown(&mut out, &self.extra)?;
                ::std::result::Result::Ok(out)
            }
        }

        ::rpmostree_api::__dict_wire!(#name);
    }
}
