//! Replays every committed fuzzing corpus (`fuzz/corpus/<target>/*`, grown by
//! cargo-fuzz and minimised) through the same entry points the fuzz targets call
//! (`vqprobe::fuzz_targets`), on stable, so a crash once found stays fixed.

use std::path::Path;

#[test]
fn every_corpus_file_runs_through_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut total = 0;
    for target in vqprobe::fuzz_targets::TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .map(|e| e.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus of {target} is empty");
        for f in &files {
            let data = std::fs::read(f).expect("corpus file");
            assert!(vqprobe::fuzz_targets::run(target, &data), "{target} known");
        }
        println!("{target}: {} inputs", files.len());
        total += files.len();
    }
    assert!(total > 0);
}
