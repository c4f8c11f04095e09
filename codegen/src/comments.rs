//! The comment-preserving pass: zbus_xml drops `<!-- -->` comments, so this module walks the XML
//! with quick-xml and attaches each comment to the element that follows it.
//!
//! The result maps an element's location (see [`Location`]) to its documentation text. It only
//! reads the XML structure; it does not interpret names, types or annotations.

use std::collections::HashMap;

use quick_xml::{Reader, events::Event};

/// Where a documented element sits in the XML, by name (and index for arguments).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Location {
    /// An `<interface>` element.
    Interface(String),
    /// A `<method>`, `<property>` or `<signal>`: (interface, element kind, name).
    Member(String, &'static str, String),
    /// The n-th `<arg>` of a method or signal: (interface, kind, member name, index).
    Arg(String, &'static str, String, usize),
}

/// Collects the comment that precedes each interface, member and argument.
pub(crate) fn collect(xml: &str) -> Result<HashMap<Location, String>, String> {
    let mut reader = Reader::from_str(xml);
    let mut docs = HashMap::new();
    let mut pending: Vec<String> = Vec::new();
    let mut iface: Option<String> = None;
    let mut member: Option<(&'static str, String)> = None;
    let mut arg_index = 0usize;

    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("XML error at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Comment(text) => {
                pending.push(text.to_string());
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let tag = e.name().as_ref().to_owned();
                let name = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == "name")
                    .map(|a| a.value.to_string());
                let doc = tidy(&pending);
                pending.clear();
                let location = match (tag.as_str(), &iface, &member) {
                    ("interface", _, _) => {
                        let n = name.clone().unwrap_or_default();
                        if !is_empty {
                            iface = Some(n.clone());
                        }
                        Some(Location::Interface(n))
                    }
                    ("method" | "signal" | "property", Some(i), _) => {
                        let kind = match tag.as_str() {
                            "method" => "method",
                            "signal" => "signal",
                            _ => "property",
                        };
                        let n = name.clone().unwrap_or_default();
                        if !is_empty {
                            member = Some((kind, n.clone()));
                            arg_index = 0;
                        }
                        Some(Location::Member(i.clone(), kind, n))
                    }
                    ("arg", Some(i), Some((kind, m))) => {
                        let loc = Location::Arg(i.clone(), kind, m.clone(), arg_index);
                        arg_index += 1;
                        Some(loc)
                    }
                    _ => None,
                };
                if let (Some(location), Some(doc)) = (location, doc) {
                    docs.insert(location, doc);
                }
            }
            Event::End(ref e) => match e.name().as_ref() {
                "interface" => {
                    iface = None;
                    pending.clear();
                }
                "method" | "signal" | "property" => {
                    member = None;
                    pending.clear();
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(docs)
}

/// Joins consecutive comments and removes the common indentation, keeping paragraph breaks.
fn tidy(comments: &[String]) -> Option<String> {
    let mut lines: Vec<String> = Vec::new();
    for comment in comments {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        let raw: Vec<&str> = comment.lines().collect();
        let indent = raw
            .iter()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        for (n, line) in raw.iter().enumerate() {
            let line = if n == 0 {
                line.trim()
            } else if line.len() >= indent {
                line[indent..].trim_end()
            } else {
                line.trim()
            };
            lines.push(line.to_owned());
        }
    }
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_attach_to_the_next_element() {
        let xml = r#"<node>
  <!-- The interface. -->
  <interface name="a.B">
    <!-- Does a thing.
         Second line. -->
    <method name="M">
      <!-- The input. -->
      <arg name="x" type="s" direction="in"/>
      <arg name="y" type="s" direction="out"/>
    </method>
    <property name="P" type="s" access="read"/>
  </interface>
</node>"#;
        let docs = collect(xml).unwrap();
        assert_eq!(docs[&Location::Interface("a.B".into())], "The interface.");
        assert_eq!(
            docs[&Location::Member("a.B".into(), "method", "M".into())],
            "Does a thing.\nSecond line."
        );
        assert_eq!(
            docs[&Location::Arg("a.B".into(), "method", "M".into(), 0)],
            "The input."
        );
        assert!(!docs.contains_key(&Location::Arg("a.B".into(), "method", "M".into(), 1)));
        assert!(!docs.contains_key(&Location::Member("a.B".into(), "property", "P".into())));
    }
}
