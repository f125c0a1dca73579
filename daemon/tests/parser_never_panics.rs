//! The parser and validator never panic, whatever the bytes.
//!
//! Arbitrary bytes, arbitrary text, and — more telling — the example
//! workflows mutated line by line (lines dropped, duplicated, cut short,
//! re-indented), which reaches deep into lowering.

use proptest::prelude::*;
use vakt::workflow;

fn examples() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
    workflow::expand_paths(&[dir])
        .unwrap()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn check(text: String) {
    let loaded = workflow::load_source("fuzz.yaml", text);
    // Rendering must not panic either, whatever the locations say.
    let _ = loaded.render_errors();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(String::from_utf8_lossy(&bytes).into_owned());
    }

    #[test]
    fn yaml_like_text(text in "[a-z_:{}\\[\\]\\- \n\"'|>#&*!%@`0-9.]{0,300}") {
        check(text);
    }

    #[test]
    fn mutated_examples(
        which in 0usize..3,
        ops in proptest::collection::vec((0u8..5, any::<prop::sample::Index>(), 0usize..40), 1..6),
    ) {
        let sources = examples();
        let mut lines: Vec<String> = sources[which % sources.len()].lines().map(str::to_owned).collect();
        for (op, at, n) in ops {
            if lines.is_empty() { break; }
            let i = at.index(lines.len());
            match op {
                0 => { lines.remove(i); }
                1 => { let l = lines[i].clone(); lines.insert(i, l); }
                2 => { let cut = n.min(lines[i].len()); let l: String = lines[i].chars().take(cut).collect(); lines[i] = l; }
                3 => { lines[i] = format!("  {}", lines[i]); }
                _ => { lines[i] = lines[i].trim_start().to_owned(); }
            }
        }
        check(lines.join("\n"));
    }
}
