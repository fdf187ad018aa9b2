//! `[pages] dir`: the operator's page files, read once at startup.
//!
//! Only reading happens here (this crate is the one that reads files): the
//! directory must be readable, and every page file in it readable UTF-8 of
//! a sane size. What the files say (placeholders, language keys) is the
//! gateway's to check, which it does for `--check` too.

use std::path::{Path, PathBuf};

use super::Result;
use crate::raw::RawPages;
use crate::{MAX_PAGE_FILE_BYTES, PageFile, PagesConfig};

/// More files than any set of pages needs (seven templates, a style, a few
/// dozen languages): a directory with more is probably the wrong one.
const MAX_PAGE_FILES: usize = 200;

pub(super) fn pages(raw: RawPages, base: &Path) -> Result<PagesConfig> {
    let Some(dir) = raw.dir else {
        return Ok(PagesConfig::default());
    };
    if dir.trim().is_empty() {
        return Err(
            "pages.dir: must not be empty (leave it out for the built-in pages)".to_owned(),
        );
    }
    let dir = base.join(dir);
    let mut files = Vec::new();
    for (subdir, extensions) in [("", &["html", "css"][..]), ("lang", &["toml"][..])] {
        let listed = if subdir.is_empty() {
            dir.clone()
        } else {
            dir.join(subdir)
        };
        let entries = match std::fs::read_dir(&listed) {
            Ok(entries) => entries,
            // `lang/` is optional; the directory itself is not.
            Err(error) if !subdir.is_empty() && error.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            Err(error) => {
                return Err(format!(
                    "pages.dir: {}: cannot read: {error}",
                    listed.display()
                ));
            }
        };
        for entry in entries {
            let entry = entry.map_err(|error| {
                format!("pages.dir: {}: cannot read: {error}", listed.display())
            })?;
            let path = entry.path();
            let wanted = path
                .extension()
                .and_then(|extension| extension.to_str())
                .is_some_and(|extension| extensions.contains(&extension));
            if !wanted || path.is_dir() {
                continue;
            }
            let Some(file_name) = path.file_name().and_then(|name| name.to_str()) else {
                return Err(format!(
                    "pages.dir: {}: the name is not UTF-8",
                    path.display()
                ));
            };
            let name = if subdir.is_empty() {
                file_name.to_owned()
            } else {
                format!("{subdir}/{file_name}")
            };
            files.push(PageFile {
                text: read_page_file(&path)?,
                name,
            });
            if files.len() > MAX_PAGE_FILES {
                return Err(format!(
                    "pages.dir: {}: more than {MAX_PAGE_FILES} page files",
                    dir.display()
                ));
            }
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(PagesConfig {
        dir: Some(dir),
        files,
    })
}

fn read_page_file(path: &PathBuf) -> Result<String> {
    let cannot = |problem: String| format!("pages.dir: {}: {problem}", path.display());
    let size = std::fs::metadata(path)
        .map_err(|error| cannot(format!("cannot read: {error}")))?
        .len();
    if size > MAX_PAGE_FILE_BYTES {
        return Err(cannot(format!(
            "{size} bytes, more than the {MAX_PAGE_FILE_BYTES} a page file may have"
        )));
    }
    let bytes = std::fs::read(path).map_err(|error| cannot(format!("cannot read: {error}")))?;
    String::from_utf8(bytes).map_err(|_| cannot("is not UTF-8 text".to_owned()))
}
