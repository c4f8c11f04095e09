//! Kernel arguments: splitting and joining command lines with double-quote handling as
//! libostree (`split_kernel_args`) and the Linux kernel (`next_arg`) do, validation of the
//! arguments clients send, and the change requests (`KernelArgs`) applied to a deployment.
//! No libostree here, so all of it is unit-tested.

use anyhow::{Result, bail};

/// Whether `c` separates kernel arguments (outside double quotes): the kernel's `isspace`,
/// that is space, tab, newline, vertical tab, form feed and carriage return.
fn is_separator(c: char) -> bool {
    c == ' ' || ('\t'..='\r').contains(&c)
}

/// Splits a kernel command line into its arguments. Arguments are separated by runs of
/// whitespace outside double quotes; a double quote toggles the quoted state and stays in the
/// argument's text, so `foo="a b c"` is one argument. Leading and trailing whitespace is
/// ignored, and an unterminated quote runs to the end of the line.
pub(crate) fn split(cmdline: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in cmdline.trim_matches(is_separator).chars() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && is_separator(c) {
            if !current.is_empty() {
                args.push(std::mem::take(&mut current));
            }
            continue;
        }
        current.push(c);
    }
    if !current.is_empty() {
        args.push(current);
    }
    args
}

/// Joins arguments into a command line, separated by single spaces.
#[cfg(test)]
pub(crate) fn join(args: &[String]) -> String {
    args.join(" ")
}

/// Whether two command lines hold the same arguments in the same order, whatever whitespace
/// separates them.
#[cfg(test)]
pub(crate) fn same_args(a: &str, b: &str) -> bool {
    split(a) == split(b)
}

/// The key of an argument: its text before the first `=` (all of it when there is none).
pub(crate) fn key(karg: &str) -> &str {
    karg.split_once('=').map(|(k, _)| k).unwrap_or(karg)
}

/// Checks one kernel argument given by a client: non-empty, without control characters, and
/// with whitespace only inside a balanced pair of double quotes.
pub(crate) fn check_karg(karg: &str) -> Result<()> {
    if karg.is_empty() {
        bail!("Invalid kernel argument {karg:?}: it is empty");
    }
    let mut quoted = false;
    for c in karg.chars() {
        if c.is_control() {
            bail!("Invalid kernel argument {karg:?}: control characters are not allowed");
        }
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && c.is_whitespace() {
            bail!(
                "Invalid kernel argument {karg:?}: whitespace is only allowed inside double quotes"
            );
        }
    }
    if quoted {
        bail!("Invalid kernel argument {karg:?}: unbalanced double quote");
    }
    Ok(())
}

/// Splits a replacement `K=OLD=NEW` into `(OLD, NEW)` at the first `=` after the key's that
/// is outside double quotes (quotes counted from the start of the argument); `None` for a
/// plain `K=V`. So `foo="a b"=x` means OLD `"a b"` and NEW `x`, while `foo="a=b"` has no OLD.
fn split_old_new(replacement: &str) -> Option<(&str, &str)> {
    let (k, rest) = replacement.split_once('=')?;
    let mut quoted = k.chars().filter(|&c| c == '"').count() % 2 == 1;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '=' if !quoted => return Some((&rest[..i], &rest[i + 1..])),
            _ => {}
        }
    }
    None
}

/// A kernel-argument change request (`KernelArgs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KargsChange {
    /// Replace everything with this string.
    pub(crate) final_args: Option<String>,
    /// `--append`.
    pub(crate) added: Vec<String>,
    /// `--replace`: `K=V` or `K=OLD=NEW`.
    pub(crate) replaced: Vec<String>,
    /// `--delete`: `K` or `K=V`.
    pub(crate) removed: Vec<String>,
    /// `--append-if-missing`.
    pub(crate) append_if_missing: Vec<String>,
    /// `--delete-if-present`.
    pub(crate) delete_if_present: Vec<String>,
}

impl KargsChange {
    /// Checks every argument of the request, and each argument of `final_args` once split.
    pub(crate) fn validate(&self) -> Result<()> {
        for k in self
            .added
            .iter()
            .chain(&self.replaced)
            .chain(&self.removed)
            .chain(&self.append_if_missing)
            .chain(&self.delete_if_present)
        {
            check_karg(k)?;
        }
        if let Some(f) = &self.final_args {
            if f.chars().any(|c| c.is_control()) {
                bail!("Invalid kernel arguments {f:?}: control characters are not allowed");
            }
            for k in split(f) {
                check_karg(&k)?;
            }
        }
        for r in &self.replaced {
            if !r.contains('=') {
                bail!("Invalid replacement '{r}': expected KEY=VALUE or KEY=OLD=NEW");
            }
        }
        Ok(())
    }

    /// Applies the request to `existing`, in upstream's order: delete, replace, append,
    /// append-if-missing, delete-if-present. Arguments are compared by their whole text,
    /// quotes included.
    pub(crate) fn apply(&self, existing: &str) -> Result<Vec<String>> {
        self.validate()?;
        if let Some(f) = &self.final_args {
            return Ok(split(f));
        }
        let mut args = split(existing);
        for d in &self.removed {
            if d.contains('=') {
                let Some(i) = args.iter().position(|a| a == d) else {
                    bail!("No kernel argument '{d}' to delete");
                };
                args.remove(i);
            } else {
                let matching: Vec<usize> = args
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| key(a) == d)
                    .map(|(i, _)| i)
                    .collect();
                match matching.as_slice() {
                    [] => bail!("No kernel argument '{d}' to delete"),
                    [i] => {
                        args.remove(*i);
                    }
                    _ => bail!(
                        "Kernel argument '{d}' has several values; say which one to delete as {d}=VALUE"
                    ),
                }
            }
        }
        for r in &self.replaced {
            let k = key(r);
            let matching: Vec<usize> = args
                .iter()
                .enumerate()
                .filter(|(_, a)| key(a) == k)
                .map(|(i, _)| i)
                .collect();
            // `K=OLD=NEW` replaces the value OLD of K; when no argument is `K=OLD` but K has a
            // single value, the whole `K=REST` is taken as the new value (values may contain
            // `=`, as in `root=LABEL=x`).
            let old_new = split_old_new(r);
            let exact = old_new.and_then(|(old, new)| {
                Some((args.iter().position(|a| *a == format!("{k}={old}"))?, new))
            });
            if let Some((i, new)) = exact {
                args[i] = format!("{k}={new}");
            } else if let Some((old, _)) = old_new
                && matching.len() != 1
            {
                bail!("No kernel argument '{k}={old}' to replace");
            } else {
                match matching.as_slice() {
                    [] => bail!("No kernel argument '{k}' to replace"),
                    [i] => args[*i] = r.clone(),
                    _ => bail!(
                        "Kernel argument '{k}' has several values; replace one as {k}=OLD=NEW"
                    ),
                }
            }
        }
        args.extend(self.added.iter().cloned());
        for a in &self.append_if_missing {
            if !args.contains(a) {
                args.push(a.clone());
            }
        }
        for d in &self.delete_if_present {
            // `K=V` removes that argument; a bare `K` removes every value of K.
            args.retain(|a| a != d && (d.contains('=') || key(a) != d));
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kargs() {
        let base = "root=LABEL=r rw quiet console=tty0 console=ttyS0";
        let change = KargsChange {
            added: vec!["a=1".into()],
            replaced: vec!["root=LABEL=r2".into(), "console=ttyS0=ttyS1".into()],
            removed: vec!["quiet".into()],
            append_if_missing: vec!["rw".into(), "b".into()],
            delete_if_present: vec!["nothere".into()],
            ..Default::default()
        };
        assert_eq!(
            change.apply(base).unwrap().join(" "),
            "root=LABEL=r2 rw console=tty0 console=ttyS1 a=1 b"
        );
        let bad = KargsChange {
            removed: vec!["console".into()],
            ..Default::default()
        };
        assert!(
            bad.apply(base)
                .unwrap_err()
                .to_string()
                .contains("several values")
        );
        let bad = KargsChange {
            added: vec!["a b".into()],
            ..Default::default()
        };
        assert!(bad.apply(base).is_err());
        let bad = KargsChange {
            removed: vec!["nope".into()],
            ..Default::default()
        };
        assert!(
            bad.apply(base)
                .unwrap_err()
                .to_string()
                .contains("No kernel argument 'nope'")
        );
        let f = KargsChange {
            final_args: Some("x y".into()),
            ..Default::default()
        };
        assert_eq!(f.apply(base).unwrap(), ["x", "y"]);
    }

    #[test]
    fn split_join_round_trip() {
        let line = r#"root=UUID=1 foo="a b c" rd.x="=y" quiet"#;
        let args = split(line);
        assert_eq!(
            args,
            ["root=UUID=1", r#"foo="a b c""#, r#"rd.x="=y""#, "quiet"]
        );
        assert_eq!(join(&args), line);
        assert_eq!(split(&join(&args)), args);
        assert_eq!(key(&args[1]), "foo");
        assert_eq!(key(&args[2]), "rd.x");
        assert_eq!(key("quiet"), "quiet");
        assert!(split("").is_empty());
        assert!(split(" \t\n ").is_empty());
    }

    #[test]
    fn whitespace_runs_and_tabs() {
        let args = split("  a=1 \t\tb\n c=\"x\ty  z\"\r\n");
        assert_eq!(args, ["a=1", "b", "c=\"x\ty  z\""]);
        assert!(same_args("a  b\tc", " a b c "));
        assert!(same_args(r#"foo="a b""#, r#"  foo="a b"  "#));
        assert!(!same_args(r#"foo="a b""#, r#"foo="a  b""#));
        assert!(!same_args("a b", "b a"));
        assert!(!same_args("a b", "a"));
    }

    #[test]
    fn unterminated_quote_in_existing() {
        assert_eq!(split(r#"a foo="b c   "#), ["a", r#"foo="b c"#]);
        assert_eq!(split("\""), ["\""]);
        assert_eq!(split("x \"  "), ["x", "\""]);
        let change = KargsChange {
            removed: vec!["foo".into()],
            added: vec!["z".into()],
            ..Default::default()
        };
        assert_eq!(change.apply(r#"a foo="b c"#).unwrap(), ["a", "z"]);
        let change = KargsChange {
            delete_if_present: vec!["nothere".into()],
            ..Default::default()
        };
        assert_eq!(change.apply(r#"a b=" c d"#).unwrap(), ["a", r#"b=" c d"#]);
    }

    #[test]
    fn append_quoted() {
        let change = KargsChange {
            added: vec![r#"foo="a b c""#.into()],
            ..Default::default()
        };
        let args = change.apply("quiet").unwrap();
        assert_eq!(args, ["quiet", r#"foo="a b c""#]);
        assert_eq!(join(&args), r#"quiet foo="a b c""#);
        let change = KargsChange {
            append_if_missing: vec![r#"foo="a b c""#.into(), r#"foo="a b""#.into()],
            ..Default::default()
        };
        assert_eq!(
            change.apply(r#"foo="a b c""#).unwrap(),
            [r#"foo="a b c""#, r#"foo="a b""#]
        );
    }

    #[test]
    fn replace_quoted() {
        let base = r#"quiet foo="a b c" root=LABEL=x"#;
        // K=V with a quoted new value, K having a single value.
        let change = KargsChange {
            replaced: vec![r#"foo="x y""#.into()],
            ..Default::default()
        };
        assert_eq!(
            change.apply(base).unwrap(),
            ["quiet", r#"foo="x y""#, "root=LABEL=x"]
        );
        // K=OLD=NEW with a quoted OLD.
        let change = KargsChange {
            replaced: vec![r#"foo="a b c"=d"#.into()],
            ..Default::default()
        };
        assert_eq!(
            change.apply(base).unwrap(),
            ["quiet", "foo=d", "root=LABEL=x"]
        );
        // K=OLD=NEW with quoted OLD and NEW, among several values of K.
        let change = KargsChange {
            replaced: vec![r#"foo="a b c"="d e""#.into()],
            ..Default::default()
        };
        assert_eq!(
            change.apply(r#"foo=1 foo="a b c""#).unwrap(),
            ["foo=1", r#"foo="d e""#]
        );
        // An `=` inside quotes does not split OLD from NEW.
        let change = KargsChange {
            replaced: vec![r#"foo="p=q""#.into()],
            ..Default::default()
        };
        assert_eq!(
            change.apply(base).unwrap(),
            ["quiet", r#"foo="p=q""#, "root=LABEL=x"]
        );
        // Values holding `=` still work: OLD ends at the first `=`, and when no argument is
        // `K=OLD` but K has a single value, the whole replacement is the new argument.
        let change = KargsChange {
            replaced: vec!["root=LABEL=y".into()],
            ..Default::default()
        };
        assert_eq!(
            change.apply(base).unwrap(),
            ["quiet", r#"foo="a b c""#, "root=LABEL=y"]
        );
        // With several values of K, OLD is what lies before the first `=` (outside quotes).
        let change = KargsChange {
            replaced: vec!["root=UUID=1".into()],
            ..Default::default()
        };
        assert_eq!(
            change
                .apply("root=LABEL=x root=UUID=2")
                .unwrap_err()
                .to_string(),
            "No kernel argument 'root=UUID' to replace"
        );
        let bad = KargsChange {
            replaced: vec![r#"foo="z z"=d"#.into()],
            ..Default::default()
        };
        assert_eq!(
            bad.apply(r#"foo=1 foo="a b c""#).unwrap_err().to_string(),
            r#"No kernel argument 'foo="z z"' to replace"#
        );
        assert_eq!(split_old_new(r#"foo="a b"=x"#), Some((r#""a b""#, "x")));
        assert_eq!(split_old_new(r#"foo="a=b""#), None);
        assert_eq!(split_old_new("foo=bar"), None);
    }

    #[test]
    fn delete_quoted() {
        let base = r#"quiet foo="a b c" bar"#;
        let change = KargsChange {
            removed: vec!["foo".into()],
            ..Default::default()
        };
        assert_eq!(change.apply(base).unwrap(), ["quiet", "bar"]);
        let change = KargsChange {
            removed: vec![r#"foo="a b c""#.into()],
            ..Default::default()
        };
        assert_eq!(change.apply(base).unwrap(), ["quiet", "bar"]);
        let bad = KargsChange {
            removed: vec![r#"foo="a b""#.into()],
            ..Default::default()
        };
        assert_eq!(
            bad.apply(base).unwrap_err().to_string(),
            r#"No kernel argument 'foo="a b"' to delete"#
        );
        let change = KargsChange {
            delete_if_present: vec![r#"foo="a b c""#.into()],
            ..Default::default()
        };
        assert_eq!(change.apply(base).unwrap(), ["quiet", "bar"]);
        let change = KargsChange {
            delete_if_present: vec!["foo".into()],
            ..Default::default()
        };
        assert_eq!(change.apply(r#"foo="a b c" foo=1 bar"#).unwrap(), ["bar"]);
    }

    #[test]
    fn invalid_arguments() {
        assert_eq!(
            check_karg(r#"foo="a b"#).unwrap_err().to_string(),
            r#"Invalid kernel argument "foo=\"a b": unbalanced double quote"#
        );
        assert_eq!(
            check_karg("a b").unwrap_err().to_string(),
            r#"Invalid kernel argument "a b": whitespace is only allowed inside double quotes"#
        );
        assert_eq!(
            check_karg(r#"a="b" c"#).unwrap_err().to_string(),
            r#"Invalid kernel argument "a=\"b\" c": whitespace is only allowed inside double quotes"#
        );
        assert_eq!(
            check_karg("").unwrap_err().to_string(),
            r#"Invalid kernel argument "": it is empty"#
        );
        assert!(
            check_karg("a=\"x\ty\"")
                .unwrap_err()
                .to_string()
                .contains("control characters")
        );
        assert!(check_karg("a\u{1}").is_err());
        assert!(check_karg("a=\u{a0}").is_err());
        assert!(check_karg(r#"foo="a b c""#).is_ok());
        assert!(check_karg(r#"foo="""#).is_ok());
        assert!(check_karg("root=LABEL=x").is_ok());
        for change in [
            KargsChange {
                added: vec![r#"foo="a b"#.into()],
                ..Default::default()
            },
            KargsChange {
                removed: vec!["foo\"".into()],
                ..Default::default()
            },
            KargsChange {
                replaced: vec![r#"foo="a"=b""#.into()],
                ..Default::default()
            },
            KargsChange {
                append_if_missing: vec!["\"".into()],
                ..Default::default()
            },
            KargsChange {
                delete_if_present: vec!["x=\"\"\"".into()],
                ..Default::default()
            },
        ] {
            let e = change.apply("quiet").unwrap_err().to_string();
            assert!(e.contains("unbalanced double quote"), "{e}");
        }
        let bad = KargsChange {
            replaced: vec!["foo".into()],
            ..Default::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "Invalid replacement 'foo': expected KEY=VALUE or KEY=OLD=NEW"
        );
    }

    #[test]
    fn final_args_quoted() {
        let f = KargsChange {
            final_args: Some(r#"  root=LABEL=x   foo="a b  c" quiet "#.into()),
            ..Default::default()
        };
        assert_eq!(
            f.apply("ignored").unwrap(),
            ["root=LABEL=x", r#"foo="a b  c""#, "quiet"]
        );
        let f = KargsChange {
            final_args: Some(r#"root=x foo="a b"#.into()),
            ..Default::default()
        };
        assert_eq!(
            f.apply("").unwrap_err().to_string(),
            r#"Invalid kernel argument "foo=\"a b": unbalanced double quote"#
        );
        let f = KargsChange {
            final_args: Some("a\tb".into()),
            ..Default::default()
        };
        assert!(
            f.apply("")
                .unwrap_err()
                .to_string()
                .contains("control characters are not allowed")
        );
        let f = KargsChange {
            final_args: Some(String::new()),
            ..Default::default()
        };
        assert!(f.apply("a b").unwrap().is_empty());
    }
}
