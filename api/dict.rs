//! Runtime support for the typed `a{sv}` dictionaries generated from the interface schemas.
//!
//! The generator turns every `org.projectatomic.rpmostree1.Dict` schema into a struct with one
//! optional field per documented key plus an `extra` map that keeps keys it does not know. This
//! module owns the conversions those structs share: checking a value's D-Bus type against the
//! schema, decoding and encoding single values, and the error that names the offending key. It
//! knows nothing about any particular dictionary.

use std::{
    collections::HashMap,
    fmt,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
};

use zbus::{OwnedVariant, Signature, Type, Variant};

/// A dictionary entry whose value does not match the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DictError {
    /// The Rust type of the dictionary (e.g. `UpgradeOptions`).
    pub dict: &'static str,
    /// The key whose value was rejected.
    pub key: String,
    /// The D-Bus signature the schema requires for this key.
    pub expected: String,
    /// The D-Bus signature of the value that was given.
    pub found: String,
}

impl fmt::Display for DictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: key '{}' must have D-Bus type '{}', but the value has type '{}'",
            self.dict, self.key, self.expected, self.found
        )
    }
}

impl std::error::Error for DictError {}

impl From<DictError> for zbus::Error {
    fn from(e: DictError) -> Self {
        zbus::Error::Failure(e.to_string())
    }
}

/// A Rust type that can be stored as the value of a schema key.
///
/// Implemented for every type the generator maps a key signature to; third-party code never needs
/// to implement it.
pub trait DictValue: Sized {
    /// The D-Bus signature of values of this type.
    fn signature() -> &'static Signature;
    /// Converts a variant whose signature already matched [`DictValue::signature`].
    fn decode(value: Variant<'_>) -> zbus::Result<Self>;
    /// The value as a variant, ready to be sent.
    fn encode(&self) -> zbus::Result<Variant<'_>>;
}

impl<T> DictValue for T
where
    T: Type + serde::Serialize + serde::de::DeserializeOwned,
{
    fn signature() -> &'static Signature {
        T::SIGNATURE
    }

    // Both directions go through the D-Bus encoding of a variant holding the value, so a value
    // means on the wire exactly what it means in Rust (a `v` inside a struct stays one variant
    // layer, never two).
    fn decode(value: Variant<'_>) -> zbus::Result<Self> {
        let data = zbus::wire::to_bytes(context(), &value)?;
        let (inner, _): (zbus::wire::as_variant::Deserialize<'_, T>, usize) = data.deserialize()?;
        Ok(inner.0)
    }

    fn encode(&self) -> zbus::Result<Variant<'_>> {
        let data = zbus::wire::to_bytes(context(), &zbus::wire::as_variant::Serialize(self))?;
        let (value, _): (Variant<'_>, usize) = data.deserialize()?;
        value.try_into_owned().map(Variant::from)
    }
}

fn context() -> zbus::wire::serialized::Context {
    zbus::wire::serialized::Context::new(zbus::wire::LE, 0)
}

/// A Unix file descriptor carried inside a dictionary (D-Bus type `h`).
///
/// Used by the keys that pass local packages or repositories to the daemon, such as
/// `install-local-packages`. The descriptor is closed when the value is dropped.
#[derive(Debug)]
pub struct UnixFd(pub OwnedFd);

impl UnixFd {
    /// Borrows the descriptor.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl PartialEq for UnixFd {
    /// Two values are equal when they hold the same descriptor number.
    fn eq(&self, other: &Self) -> bool {
        use std::os::fd::AsRawFd;
        self.0.as_raw_fd() == other.0.as_raw_fd()
    }
}

impl From<OwnedFd> for UnixFd {
    fn from(fd: OwnedFd) -> Self {
        Self(fd)
    }
}

fn fd_from_variant(value: &Variant<'_>) -> zbus::Result<UnixFd> {
    match value {
        Variant::Fd(fd) => Ok(UnixFd(fd.as_fd().try_clone_to_owned()?)),
        _ => Err(zbus::Error::IncorrectType),
    }
}

impl DictValue for UnixFd {
    fn signature() -> &'static Signature {
        <zbus::Fd<'_> as Type>::SIGNATURE
    }

    fn decode(value: Variant<'_>) -> zbus::Result<Self> {
        fd_from_variant(&value)
    }

    fn encode(&self) -> zbus::Result<Variant<'_>> {
        Ok(Variant::Fd(zbus::Fd::Borrowed(self.as_fd())))
    }
}

/// A list of Unix file descriptors carried inside a dictionary (D-Bus type `ah`).
#[derive(Debug, Default, PartialEq)]
pub struct UnixFdList(pub Vec<UnixFd>);

impl From<Vec<OwnedFd>> for UnixFdList {
    fn from(fds: Vec<OwnedFd>) -> Self {
        Self(fds.into_iter().map(UnixFd).collect())
    }
}

impl DictValue for UnixFdList {
    fn signature() -> &'static Signature {
        <Vec<zbus::Fd<'_>> as Type>::SIGNATURE
    }

    fn decode(value: Variant<'_>) -> zbus::Result<Self> {
        match value {
            Variant::Array(array) => array
                .iter()
                .map(fd_from_variant)
                .collect::<zbus::Result<Vec<_>>>()
                .map(Self),
            _ => Err(zbus::Error::IncorrectType),
        }
    }

    fn encode(&self) -> zbus::Result<Variant<'_>> {
        let fds: Vec<zbus::Fd<'_>> = self
            .0
            .iter()
            .map(|fd| zbus::Fd::Borrowed(fd.as_fd()))
            .collect();
        Ok(Variant::from(fds))
    }
}

/// Decodes the value of `key` for the dictionary type `dict`, checking its D-Bus type first.
///
/// Used by generated code.
pub fn decode_key<T: DictValue>(
    dict: &'static str,
    key: &str,
    value: Variant<'_>,
) -> Result<T, DictError> {
    let value = match value {
        // A value wrapped in one more variant layer is accepted as its content.
        Variant::Variant(inner) if T::signature() != <Variant<'_> as Type>::SIGNATURE => *inner,
        other => other,
    };
    let error = |found: String| DictError {
        dict,
        key: key.to_owned(),
        expected: T::signature().to_string(),
        found,
    };
    if value.value_signature() != T::signature() {
        return Err(error(value.value_signature().to_string()));
    }
    T::decode(value).map_err(|e| error(format!("{} ({e})", T::signature())))
}

/// Keeps the value of a key the schema does not list. Used by generated code.
pub fn own_unknown(
    dict: &'static str,
    key: &str,
    value: Variant<'_>,
) -> Result<OwnedVariant, DictError> {
    let found = value.value_signature().to_string();
    value.try_into_owned().map_err(|e| DictError {
        dict,
        key: key.to_owned(),
        expected: found.clone(),
        found: format!("{found} ({e})"),
    })
}

/// Appends the unknown keys, sorted, as borrowed variants. Used by generated code.
pub fn push_unknown<'a>(
    out: &mut Vec<(&'a str, Variant<'a>)>,
    extra: &'a HashMap<String, OwnedVariant>,
) -> zbus::Result<()> {
    let mut keys: Vec<&'a String> = extra.keys().collect();
    keys.sort();
    for key in keys {
        if let Some(value) = extra.get(key) {
            out.push((key.as_str(), value.try_clone()?.into()));
        }
    }
    Ok(())
}

/// A typed dictionary generated from an interface schema.
///
/// The generated structs implement this trait, `zbus::Type` (as `a{sv}`), `Serialize` and
/// `Deserialize`, so they can be passed and received wherever the wire type is `a{sv}`.
pub trait Dict: Sized {
    /// The Rust name of the dictionary type.
    const NAME: &'static str;
    /// The schema: each documented key with its D-Bus signature and meaning.
    const KEYS: &'static [KeySchema];

    /// Builds the typed value from a raw dictionary. Unknown keys are kept in `extra`; a known
    /// key with a value of the wrong type is an error naming the key and the expected type.
    fn from_variants<'a, I>(entries: I) -> Result<Self, DictError>
    where
        I: IntoIterator<Item = (String, Variant<'a>)>;

    /// Borrows every entry, known and unknown, as a variant (known keys in schema order, then
    /// unknown keys sorted). Fails only when a file descriptor cannot be duplicated.
    fn to_variants(&self) -> zbus::Result<Vec<(&str, Variant<'_>)>>;

    /// Builds the typed value from an owned raw dictionary, as received from a proxy.
    fn from_dict(dict: HashMap<String, OwnedVariant>) -> Result<Self, DictError> {
        Self::from_variants(dict.into_iter().map(|(k, v)| (k, Variant::from(v))))
    }

    /// The raw dictionary: every known key that is set, plus every unknown key as received.
    ///
    /// Fails only when a file descriptor cannot be duplicated.
    fn to_dict(&self) -> zbus::Result<HashMap<String, OwnedVariant>> {
        self.to_variants()?
            .into_iter()
            .map(|(k, v)| Ok((k.to_owned(), v.try_to_owned()?)))
            .collect()
    }
}

/// One key of a dictionary schema, as written in the interface XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySchema {
    /// The key.
    pub key: &'static str,
    /// Its D-Bus signature.
    pub signature: &'static str,
    /// A one-line meaning.
    pub meaning: &'static str,
}

/// Implements the wire traits (`Type`, `Serialize`, `Deserialize`, variant conversions) of a
/// generated dictionary type in terms of its [`Dict`] implementation. Used by generated code.
#[doc(hidden)]
#[macro_export]
macro_rules! __dict_wire {
    ($ty:ident) => {
        impl $crate::__private::zbus::Type for $ty {
            const SIGNATURE: &'static $crate::__private::zbus::Signature = <::std::collections::HashMap<
                ::std::string::String,
                $crate::__private::zbus::OwnedVariant,
            > as $crate::__private::zbus::Type>::SIGNATURE;
        }

        impl $crate::__private::serde::Serialize for $ty {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                use $crate::__private::serde::ser::SerializeMap;
                let entries = $crate::dict::Dict::to_variants(self)
                    .map_err(<S::Error as $crate::__private::serde::ser::Error>::custom)?;
                let mut map = serializer.serialize_map(::std::option::Option::Some(entries.len()))?;
                for (key, value) in &entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $ty {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let raw: ::std::collections::HashMap<
                    ::std::string::String,
                    $crate::__private::zbus::OwnedVariant,
                > = $crate::__private::serde::Deserialize::deserialize(deserializer)?;
                <$ty as $crate::dict::Dict>::from_dict(raw)
                    .map_err(<D::Error as $crate::__private::serde::de::Error>::custom)
            }
        }

        impl<'a> ::std::convert::TryFrom<$crate::__private::zbus::Variant<'a>> for $ty {
            type Error = $crate::__private::zbus::Error;

            fn try_from(
                value: $crate::__private::zbus::Variant<'a>,
            ) -> ::std::result::Result<Self, Self::Error> {
                match value {
                    $crate::__private::zbus::Variant::Dict(dict) => {
                        let raw: ::std::collections::HashMap<
                            ::std::string::String,
                            $crate::__private::zbus::OwnedVariant,
                        > = ::std::convert::TryFrom::try_from(dict)?;
                        ::std::result::Result::Ok(<$ty as $crate::dict::Dict>::from_dict(raw)?)
                    }
                    _ => ::std::result::Result::Err($crate::__private::zbus::Error::IncorrectType),
                }
            }
        }

        impl ::std::convert::TryFrom<$crate::__private::zbus::OwnedVariant> for $ty {
            type Error = $crate::__private::zbus::Error;

            fn try_from(
                value: $crate::__private::zbus::OwnedVariant,
            ) -> ::std::result::Result<Self, Self::Error> {
                <$ty as ::std::convert::TryFrom<$crate::__private::zbus::Variant<'static>>>::try_from(
                    $crate::__private::zbus::Variant::from(value),
                )
            }
        }
    };
}
