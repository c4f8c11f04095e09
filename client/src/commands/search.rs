//! `rpm-ostree search TERM...`: search the enabled rpm-md repositories (the daemon's cached
//! metadata) for packages, printed grouped by what matched, as upstream.

use anyhow::Result;
use rpmostree_api::PackageInfo;

use super::Context;
use crate::Exit;
use crate::cli::SearchArgs;
use crate::connection::Daemon;
use crate::error::daemon_error;

/// Asks the daemon (`Search`) and prints the matches.
pub async fn run(daemon: &Daemon, ctx: &Context, args: &SearchArgs) -> Result<Exit> {
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    let terms: Vec<&str> = args.terms.iter().map(String::as_str).collect();
    let packages = os
        .search(&terms)
        .await
        .map_err(|e| daemon_error("Search", e))?;
    print!("{}", format(&packages));
    Ok(Exit::Success)
}

/// The heading word(s) of a match group (`key` of a search result).
fn group_title(key: &str) -> &'static str {
    match key {
        "match_group_a" => "Summary & Name",
        "match_group_b" => "Name",
        "match_group_c" => "Summary",
        _ => "",
    }
}

/// The results as upstream prints them, in the order received: before the first package of
/// each match group a blank line and `===== <group> Matched =====`, then one
/// `name : summary` line per package; `No matches found.` when there is none.
pub fn format(packages: &[PackageInfo]) -> String {
    if packages.is_empty() {
        return "No matches found.\n".to_owned();
    }
    let mut out = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for package in packages {
        let key = package.key.as_deref().unwrap_or_default();
        if !seen.contains(&key) {
            seen.push(key);
            out.push_str(&format!("\n===== {} Matched =====\n", group_title(key)));
        }
        out.push_str(&format!(
            "{} : {}\n",
            package.name.as_deref().unwrap_or_default(),
            package.summary.as_deref().unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpmostree_api::dict::Dict;

    fn package(key: &str, name: &str, summary: &str) -> PackageInfo {
        PackageInfo::new()
            .key(key)
            .name(name)
            .epoch(0)
            .version("1.0")
            .arch("x86_64")
            .nevra(format!("{name}-1.0-1.x86_64"))
            .evr("1.0-1")
            .summary(summary)
            .reponame("fixture")
    }

    #[test]
    fn results_are_grouped_by_what_matched() {
        let packages = [
            package("match_group_a", "foo", "The foo tool"),
            package("match_group_a", "foo-libs", "Libraries of foo"),
            package("match_group_b", "foobar", "Bar things"),
            package("match_group_c", "baz", "Works with foo"),
        ];
        assert_eq!(
            format(&packages),
            "\n===== Summary & Name Matched =====\n\
             foo : The foo tool\n\
             foo-libs : Libraries of foo\n\
             \n===== Name Matched =====\n\
             foobar : Bar things\n\
             \n===== Summary Matched =====\n\
             baz : Works with foo\n"
        );
    }

    #[test]
    fn a_group_heading_is_printed_once_and_no_result_says_so() {
        let packages = [
            package("match_group_b", "a", "x"),
            package("match_group_c", "b", "y"),
            package("match_group_b", "c", "z"),
        ];
        assert_eq!(
            format(&packages),
            "\n===== Name Matched =====\na : x\n\n===== Summary Matched =====\nb : y\nc : z\n"
        );
        assert_eq!(format(&[]), "No matches found.\n");
    }

    #[test]
    fn results_decode_from_the_wire_dictionary() {
        // The daemon's a{sv}, through the same conversion the proxy uses.
        let raw = package("match_group_a", "foo", "The foo tool")
            .to_dict()
            .expect("a dictionary");
        let decoded = PackageInfo::from_dict(raw).expect("decodes");
        assert_eq!(
            format(&[decoded]),
            "\n===== Summary & Name Matched =====\nfoo : The foo tool\n"
        );
    }
}
