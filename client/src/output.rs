//! Formatting shared by the commands: D-Bus variants as JSON, UTC timestamps, byte sizes,
//! right-aligned `Key: value` lines, and the colours used for warnings on a terminal.

use std::collections::HashMap;

use rpmostree_api::dict::Dict;
use serde_json::{Map, Value};
use zbus::{OwnedVariant, Variant};

/// The width keys are right-aligned to in deployment blocks: the longest key upstream prints
/// there (`InactiveRemoteOverrides`).
pub const KEY_WIDTH: usize = 23;

/// One `  <key right-aligned to width>: value` line, with the trailing newline.
pub fn kv(key: &str, width: usize, value: &str) -> String {
    format!("  {key:>width$}: {value}\n")
}

/// A D-Bus variant as JSON, the way upstream's status serialises GVariants: dictionaries
/// become objects, arrays and structures become arrays, variants are unwrapped, numbers and
/// booleans stay themselves, strings, object paths and signatures become strings.
pub fn variant_to_json(value: &Variant<'_>) -> Value {
    match value {
        Variant::U8(v) => Value::from(*v),
        Variant::Bool(v) => Value::from(*v),
        Variant::I16(v) => Value::from(*v),
        Variant::U16(v) => Value::from(*v),
        Variant::I32(v) => Value::from(*v),
        Variant::U32(v) => Value::from(*v),
        Variant::I64(v) => Value::from(*v),
        Variant::U64(v) => Value::from(*v),
        Variant::F64(v) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
        Variant::Str(s) => Value::from(s.as_str()),
        Variant::Signature(s) => Value::from(s.to_string()),
        Variant::ObjectPath(p) => Value::from(p.as_str()),
        Variant::Variant(inner) => variant_to_json(inner),
        Variant::Array(a) => Value::Array(a.inner().iter().map(variant_to_json).collect()),
        Variant::Dict(d) => {
            let mut map = Map::new();
            for (k, v) in d.iter() {
                map.insert(json_key(k), variant_to_json(v));
            }
            Value::Object(map)
        }
        Variant::Structure(s) => Value::Array(s.fields().iter().map(variant_to_json).collect()),
        Variant::Fd(fd) => {
            use std::os::fd::AsRawFd;
            Value::from(fd.as_raw_fd())
        }
    }
}

/// The text of a dictionary key (keys are basic types).
fn json_key(key: &Variant<'_>) -> String {
    match variant_to_json(key) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// A typed dictionary (every key it holds, known or not) as a JSON object.
pub fn dict_to_json<D: Dict>(dict: &D) -> Value {
    let mut map = Map::new();
    if let Ok(entries) = dict.to_variants() {
        for (key, value) in entries {
            map.insert(key.to_owned(), variant_to_json(&value));
        }
    }
    Value::Object(map)
}

/// A raw `a{sv}` as a JSON object.
pub fn raw_dict_to_json(dict: &HashMap<String, OwnedVariant>) -> Value {
    let mut map = Map::new();
    for (key, value) in dict {
        map.insert(key.clone(), variant_to_json(value));
    }
    Value::Object(map)
}

/// A Unix time as `YYYY-MM-DDTHH:MM:SSZ` (UTC), as upstream prints commit timestamps.
pub fn iso8601_utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A byte count in decimal units (`512 bytes`, `1.2 kB`, `3.4 MB`), like GLib's
/// `g_format_size`, which upstream's progress lines use.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return if bytes == 1 {
            "1 byte".to_owned()
        } else {
            format!("{bytes} bytes")
        };
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Terminal emphasis for warnings (red, bold) when stdout is a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Whether escape sequences are written.
    pub color: bool,
}

impl Style {
    /// Colours only on a terminal, and never with `NO_COLOR` set.
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        Self {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// `text` in bold red (or as is).
    pub fn red_bold(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[31m\x1b[1m{text}\x1b[22m\x1b[39m")
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601_utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn sizes() {
        assert_eq!(format_size(0), "0 bytes");
        assert_eq!(format_size(1), "1 byte");
        assert_eq!(format_size(1500), "1.5 kB");
        assert_eq!(format_size(2_500_000), "2.5 MB");
    }

    #[test]
    fn key_value_lines_align() {
        assert_eq!(
            kv("Version", KEY_WIDTH, "1.0"),
            format!("{}Version: 1.0\n", " ".repeat(2 + KEY_WIDTH - 7))
        );
    }

    #[test]
    fn variants_become_json() {
        let v = Variant::from((1u32, "a", true));
        assert_eq!(variant_to_json(&v), serde_json::json!([1, "a", true]));
        let inner = Variant::Variant(Box::new(Variant::from("x")));
        assert_eq!(variant_to_json(&inner), serde_json::json!("x"));
        let mut dict = HashMap::new();
        dict.insert("k".to_owned(), 5u64);
        assert_eq!(
            variant_to_json(&Variant::from(dict)),
            serde_json::json!({"k": 5})
        );
    }
}
