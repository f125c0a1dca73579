//! The parser and validator never panic, whatever the bytes.
//!
//! Arbitrary bytes, arbitrary text, and — more telling — the example
//! workflows and the bad-input cases of `tests/ui/` mutated line by line
//! (lines dropped, duplicated, cut short, re-indented), which reaches deep
//! into lowering; and random templates and expressions in a valid file,
//! which exercises the code that finds the offending token in a string.

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

fn ui_cases() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn mutate(source: &str, ops: Vec<(u8, prop::sample::Index, usize)>) -> String {
    let mut lines: Vec<String> = source.lines().map(str::to_owned).collect();
    for (op, at, n) in ops {
        if lines.is_empty() {
            break;
        }
        let i = at.index(lines.len());
        match op {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let cut = n.min(lines[i].chars().count());
                let l: String = lines[i].chars().take(cut).collect();
                lines[i] = l;
            }
            3 => lines[i] = format!("  {}", lines[i]),
            _ => lines[i] = lines[i].trim_start().to_owned(),
        }
    }
    lines.join("\n")
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

    /// Raw bytes from disk, invalid UTF-8 included, through the file loader.
    #[test]
    fn arbitrary_files(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.yaml");
        std::fs::write(&path, &bytes).unwrap();
        let loaded = workflow::load_file(&path);
        let _ = loaded.render_errors();
        if std::str::from_utf8(&bytes).is_err() {
            prop_assert!(loaded.result.is_err(), "invalid UTF-8 must be refused");
        }
    }

    #[test]
    fn yaml_like_text(text in "[a-z_:{}\\[\\]\\- \n\"'|>#&*!%@`0-9.]{0,300}") {
        check(text);
    }

    #[test]
    fn mutated_ui_cases(
        which in any::<prop::sample::Index>(),
        ops in proptest::collection::vec((0u8..5, any::<prop::sample::Index>(), 0usize..40), 1..6),
    ) {
        let cases = ui_cases();
        check(mutate(&cases[which.index(cases.len())], ops));
    }

    #[test]
    fn random_templates(text in "[a-zé_{}%|\"' .:()\\[\\]\n#<>=-]{0,60}") {
        // A JSON string is a valid double-quoted YAML scalar.
        let quoted = serde_json::to_string(&text).unwrap();
        check(format!("id: w\nsteps:\n  - id: s\n    call: mail.send\n    with:\n      to: a@b.se\n      subject: {quoted}\n      body: |\n        {}\n", text.replace('\n', "\n        ")));
        check(format!("id: w\nsteps:\n  - id: s\n    if: {quoted}\n    then:\n      - id: t\n        wait: 1h\n"));
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
