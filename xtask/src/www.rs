//! The page's precompressed files: beside each text or wasm file of the built page, a `.br`
//! (brotli, quality 11) and a `.gz` (gzip, level 9) that natter-bridge sends, unchanged, to
//! browsers that accept that encoding. Made once per build here, so the bridge spends nothing on
//! compression; a variant that would not be smaller is not written. Old variants go first, so
//! none outlives the file it was made from (the bridge also refuses to serve any that is older
//! than its file).

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Extensions worth compressing (the rest of a page is images, already compressed).
const COMPRESSIBLE: &[&str] = &[
    "html",
    "js",
    "mjs",
    "css",
    "wasm",
    "json",
    "map",
    "svg",
    "txt",
    "webmanifest",
];

/// Writes `X.br` and `X.gz` for every compressible file `X` in `dir` (not recursive: the page
/// is flat), after removing every `.br` and `.gz` there.
pub fn precompress(dir: &Path) -> Result<()> {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    for e in &entries {
        let path = e.path();
        if matches!(ext(&path), Some("br" | "gz")) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let (mut plain, mut br_total, mut gz_total) = (0, 0, 0);
    for e in &entries {
        let path = e.path();
        if !e.file_type()?.is_file() || !ext(&path).is_some_and(|x| COMPRESSIBLE.contains(&x)) {
            continue;
        }
        let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        plain += data.len();
        for (suffix, packed) in [("br", brotli(&data)?), ("gz", gzip(&data)?)] {
            if packed.len() >= data.len() {
                continue;
            }
            let mut name = path.clone().into_os_string();
            name.push(".");
            name.push(suffix);
            std::fs::write(&name, &packed)
                .with_context(|| format!("writing {}", Path::new(&name).display()))?;
            if suffix == "br" {
                br_total += packed.len();
            } else {
                gz_total += packed.len();
            }
        }
    }
    eprintln!(
        "xtask: precompressed the page: {} KiB -> brotli {} KiB, gzip {} KiB",
        plain / 1024,
        br_total / 1024,
        gz_total / 1024
    );
    Ok(())
}

fn ext(path: &Path) -> Option<&str> {
    path.extension().and_then(|e| e.to_str())
}

fn brotli(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        // 4 KiB buffer, quality 11 (the most), a 4 MiB window (22 bits).
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        w.write_all(data).context("brotli")?;
        w.flush().context("brotli")?;
    }
    Ok(out)
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    w.write_all(data).context("gzip")?;
    w.finish().context("gzip")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn variants_decompress_to_the_file_and_old_ones_go() {
        let dir = std::env::temp_dir().join(format!("xtask-www-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let js = "export function f() { return 42; }\n".repeat(200);
        std::fs::write(dir.join("app.js"), &js).unwrap();
        std::fs::write(dir.join("tiny.css"), "a{}").unwrap();
        std::fs::write(dir.join("logo.png"), [0u8; 64]).unwrap();
        std::fs::write(dir.join("gone.js.br"), "stale").unwrap();
        precompress(&dir).unwrap();

        let br = std::fs::read(dir.join("app.js.br")).unwrap();
        let mut back = String::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, js);
        let gz = std::fs::read(dir.join("app.js.gz")).unwrap();
        let mut back = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, js);
        assert!(br.len() < js.len() / 10 && gz.len() < js.len() / 10);
        // Not smaller: not written. Not compressible: not tried. Orphans: removed.
        for absent in ["tiny.css.br", "tiny.css.gz", "logo.png.br", "gone.js.br"] {
            assert!(!dir.join(absent).exists(), "{absent}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
