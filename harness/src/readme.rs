//! The READMEs are what users paste: their code is the examples' code, byte for
//! byte, with complete `[dependencies]`, no hidden lines, and links that render
//! on crates.io.

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    fn read(path: &str) -> String {
        let path = crate::examples::workspace_root().join(path);
        fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    /// The fenced code blocks of `markdown`: (info string, text).
    fn code_blocks(markdown: &str) -> Vec<(String, String)> {
        let mut blocks = Vec::new();
        let mut current: Option<(String, String)> = None;
        for line in markdown.lines() {
            match (&mut current, line.strip_prefix("```")) {
                (None, Some(info)) => current = Some((info.to_owned(), String::new())),
                (Some(_), Some(_)) => blocks.extend(current.take()),
                (Some((_, text)), None) => {
                    text.push_str(line);
                    text.push('\n');
                }
                (None, None) => {}
            }
        }
        blocks
    }

    /// The dependency names of a `Cargo.toml`'s `[dependencies]` table.
    fn dependencies(manifest: &str) -> Vec<String> {
        manifest
            .split("[dependencies]")
            .nth(1)
            .unwrap_or_default()
            .lines()
            .take_while(|line| !line.starts_with('['))
            .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim().to_owned()))
            .filter(|name| !name.is_empty())
            .collect()
    }

    const READMES: [&str; 4] = [
        "README.md",
        "chatbase-core/README.md",
        "chatbase-axum/README.md",
        "chatbase-actix/README.md",
    ];

    #[test]
    fn the_workspace_readme_shows_the_examples_verbatim_with_their_dependencies() {
        let readme = read("README.md");
        let blocks = code_blocks(&readme);
        for example in ["axum", "actix"] {
            let main = read(&format!("examples/{example}/src/main.rs"));
            assert!(
                blocks.iter().any(|(_, text)| *text == main),
                "README.md does not show examples/{example}/src/main.rs verbatim"
            );
            let manifest = read(&format!("examples/{example}/Cargo.toml"));
            let wanted = dependencies(&manifest);
            assert!(!wanted.is_empty());
            let shown = blocks.iter().any(|(info, text)| {
                info == "toml" && {
                    let listed = dependencies(text);
                    wanted.iter().all(|name| listed.contains(name))
                }
            });
            assert!(
                shown,
                "README.md has no [dependencies] block with all of {wanted:?}"
            );
        }
        // The crate READMEs show the same files.
        for (example, crate_readme) in [("axum", "chatbase-axum"), ("actix", "chatbase-actix")] {
            let main = read(&format!("examples/{example}/src/main.rs"));
            let blocks = code_blocks(&read(&format!("{crate_readme}/README.md")));
            assert!(
                blocks.iter().any(|(_, text)| *text == main),
                "{crate_readme}/README.md does not show examples/{example}/src/main.rs verbatim"
            );
        }
    }

    #[test]
    fn readme_code_has_no_hidden_lines() {
        for path in READMES {
            for (info, text) in code_blocks(&read(path)) {
                if !info.starts_with("rust") {
                    continue;
                }
                for line in text.lines() {
                    let trimmed = line.trim_start();
                    let hidden = trimmed == "#" || trimmed.starts_with("# ");
                    assert!(!hidden, "{path}: a hidden line in a code block: {line:?}");
                }
            }
        }
    }

    #[test]
    fn readme_links_render_on_crates_io() {
        // An intra-doc link, ``[`Verifier`]`` with no target, shows as raw
        // brackets on crates.io.
        for path in READMES {
            let readme = read(path);
            let mut rest = readme.as_str();
            while let Some(start) = rest.find("[`") {
                let after = &rest[start..];
                let end = after.find("`]").map_or(after.len(), |end| end + 2);
                let next = after[end..].chars().next();
                assert!(
                    matches!(next, Some('(' | ':')),
                    "{path}: a link without a target: {}",
                    &after[..end]
                );
                rest = &after[end..];
            }
        }
    }

    #[test]
    fn examples_are_single_files() {
        for example in crate::examples::EXAMPLES {
            let directory = match example {
                "example-axum" => "axum",
                "example-actix" => "actix",
                "example-inbox" => "inbox",
                "example-many-bots" => "many-bots",
                other => other,
            };
            let source = crate::examples::workspace_root()
                .join("examples")
                .join(directory)
                .join("src");
            let mut files: Vec<PathBuf> = fs::read_dir(&source)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .collect();
            files.sort();
            assert_eq!(files, [source.join("main.rs")], "{example}");
        }
    }
}
