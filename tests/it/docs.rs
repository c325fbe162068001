//! Every "THEORY §N" cited in the sources points at a section of `docs/THEORY.md`
//! (issue 15): the citations are collected from every `.rs` and `.md` file under
//! `src/`, `tests/`, `examples/`, `benches/` and from `README.md`, and each must be a
//! heading `## N. …` (or `### N.M …` for a sub-section) of THEORY.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The section labels cited as `THEORY §N`, `THEORY §7a`, `THEORY §6.1`, and the ranges
/// `THEORY §3–§5` (both ends) in `text`.
fn citations(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let label = |s: &str| -> Option<(String, usize)> {
        // N, then an optional letter, then an optional .M
        let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let mut end = digits;
        let rest = &s[end..];
        if let Some(c) = rest.chars().next() {
            if c.is_ascii_lowercase() && !rest[1..].starts_with(|d: char| d.is_ascii_alphabetic()) {
                end += 1;
            }
        }
        let rest = &s[end..];
        if rest.starts_with('.') && rest[1..].starts_with(|d: char| d.is_ascii_digit()) {
            end += 1 + rest[1..].chars().take_while(|c| c.is_ascii_digit()).count();
        }
        Some((s[..end].to_string(), end))
    };
    for (start, _) in text.match_indices("THEORY §") {
        let after = &text[start + "THEORY §".len()..];
        if let Some((first, len)) = label(after) {
            found.insert(first);
            // a range "§3–§5" cites its far end too
            let tail = &after[len..];
            for dash in ["–§", "-§"] {
                if let Some(rest) = tail.strip_prefix(dash) {
                    if let Some((second, _)) = label(rest) {
                        found.insert(second);
                    }
                }
            }
        }
    }
    found
}

/// The section labels of THEORY.md: `## 6b. Title` gives `6b`, `### 6.1 Title` gives `6.1`.
fn sections(theory: &str) -> BTreeSet<String> {
    theory
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("### ").or_else(|| line.strip_prefix("## "))?;
            let label: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            let label = label.trim_end_matches('.').to_string();
            label.starts_with(|c: char| c.is_ascii_digit()).then_some(label)
        })
        .collect()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("rs" | "md")) {
            out.push(path);
        }
    }
}

#[test]
fn citation_and_section_parsers_work() {
    let cited = citations("see THEORY §7a, THEORY §6.1 and (THEORY §3–§5). THEORY §8: x; THEORY §");
    let expected: BTreeSet<String> = ["7a", "6.1", "3", "5", "8"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(cited, expected);
    let found = sections("# T\n## 1. Conventions\n## 6b. Gaps\n### 6.1 Scalar\n## Notes\n");
    let expected: BTreeSet<String> = ["1", "6b", "6.1"].iter().map(|s| s.to_string()).collect();
    assert_eq!(found, expected);
}

#[test]
fn every_cited_theory_section_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let theory = std::fs::read_to_string(root.join("docs/THEORY.md")).expect("docs/THEORY.md exists");
    let have = sections(&theory);
    let mut files = vec![root.join("README.md")];
    for dir in ["src", "tests", "examples", "benches"] {
        files_under(&root.join(dir), &mut files);
    }
    let mut cited = 0;
    let mut missing = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for label in citations(&text) {
            cited += 1;
            if !have.contains(&label) {
                missing.push(format!(
                    "§{label} ({})",
                    file.strip_prefix(root).unwrap_or(file).display()
                ));
            }
        }
    }
    // the crate cites THEORY in dozens of places: finding none means the scan is broken
    assert!(
        cited > 20,
        "only {cited} citations found: is the scan looking in the right place?"
    );
    assert!(
        missing.is_empty(),
        "cited but not a heading of docs/THEORY.md: {}",
        missing.join(", ")
    );
}
