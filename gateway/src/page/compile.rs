//! Compiling the pages once, at startup: the built-in files, with the
//! operator's from `[pages] dir` in their place, in every language; and the
//! Content-Security-Policy that allows exactly their inline style and
//! scripts.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::HeaderValue;
use sha2::{Digest, Sha256};

use anteroom_config::PagesConfig;

use super::format::{escaped, push_js_string};
use super::template::{LanguageParts, PageKind, Template};
use super::texts::{self, Texts};
use super::{Language, Pages, SCRIPT_KEYS, STYLE_CSS, TOO_MANY_HTML, WAITING_JS};

/// The pages do not compile: which file (after `pages.dir: `, for
/// `--check`), and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PagesError(String);

impl Pages {
    /// The pages with the operator's files from `[pages] dir` in place of
    /// ours.
    pub fn from_config(config: &PagesConfig) -> Result<Pages, PagesError> {
        Pages::compile(config).map_err(PagesError)
    }

    fn compile(config: &PagesConfig) -> Result<Pages, String> {
        let in_dir = |name: &str| match &config.dir {
            Some(dir) => format!("pages.dir: {}: ", dir.join(name).display()),
            None => format!("pages: {name}: "),
        };
        let mut style = STYLE_CSS.trim_end().to_owned();
        let mut sources: Vec<&str> = PageKind::ALL.iter().map(|kind| kind.built_in()).collect();
        let mut languages: Vec<(String, Texts)> = texts::BUILT_IN
            .iter()
            .map(|(code, text)| {
                Texts::parse(text, None)
                    .map(|texts| ((*code).to_owned(), texts))
                    .map_err(|error| format!("{}{error}", in_dir(&format!("lang/{code}.toml"))))
            })
            .collect::<Result<_, _>>()?;
        let mut language_files: Vec<&anteroom_config::PageFile> = Vec::new();
        for file in &config.files {
            if file.name == "style.css" {
                style = file.text.trim_end().to_owned();
                if style.contains("</") {
                    return Err(format!(
                        "{}must not contain \"</\" (it is inlined in a <style> element)",
                        in_dir(&file.name)
                    ));
                }
            } else if let Some(kind) = PageKind::ALL
                .iter()
                .find(|kind| kind.file_name() == file.name)
            {
                sources[kind.index()] = &file.text;
            } else if file.name.starts_with("lang/") && file.name.ends_with(".toml") {
                language_files.push(file);
            } else {
                return Err(format!(
                    "{}not a file the gateway uses ({}, style.css, lang/CODE.toml)",
                    in_dir(&file.name),
                    PageKind::ALL.map(PageKind::file_name).join(", ")
                ));
            }
        }
        for file in language_files {
            let code = &file.name["lang/".len()..file.name.len() - ".toml".len()];
            if !texts::is_language_code(code) {
                return Err(format!(
                    "{}the file name must be a language code of two or three lowercase letters (de.toml, fur.toml)",
                    in_dir(&file.name)
                ));
            }
            let existing = languages.iter().position(|(known, _)| known == code);
            let base = existing.map(|index| &languages[index].1);
            let parsed = Texts::parse(&file.text, base)
                .map_err(|error| format!("{}{error}", in_dir(&file.name)))?;
            match existing {
                Some(index) => languages[index].1 = parsed,
                None => languages.push((code.to_owned(), parsed)),
            }
        }
        if languages.len() > usize::from(u16::MAX) {
            return Err(format!("{}too many languages", in_dir("lang")));
        }
        let names: Vec<(String, String)> = languages
            .iter()
            .map(|(code, texts)| (code.clone(), escaped(&texts.language_name)))
            .collect();
        let mut script_hashes = Vec::new();
        let mut compiled = Vec::with_capacity(languages.len());
        for (code, raw) in &languages {
            let html = raw.map(escaped);
            let script_element = script_element(code, raw);
            let script =
                &script_element["<script>".len()..script_element.len() - "</script>".len()];
            script_hashes.push(source_hash(script));
            let parts = LanguageParts {
                code,
                html: &html,
                style: &style,
                script_element: &script_element,
            };
            let templates = PageKind::ALL
                .iter()
                .map(|kind| {
                    Template::compile(*kind, sources[kind.index()], &parts).map_err(|error| {
                        let name = format!("{} ({code})", kind.file_name());
                        format!("{}{error}", in_dir(&name))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let too_many = bytes::Bytes::from(
                TOO_MANY_HTML
                    .trim_end()
                    .replace("{{lang}}", code)
                    .replace("{{too_many_title}}", &html.too_many_title)
                    .replace("{{too_many_lead}}", &html.too_many_lead),
            );
            compiled.push(Language {
                code: code.clone(),
                html,
                templates,
                too_many,
                others: names
                    .iter()
                    .filter(|(other, _)| other != code)
                    .cloned()
                    .collect(),
            });
        }
        let policy = format!(
            "default-src 'none'; script-src {}; style-src '{}'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            script_hashes
                .iter()
                .map(|hash| format!("'{hash}'"))
                .collect::<Vec<_>>()
                .join(" "),
            source_hash(&style),
        );
        Ok(Pages {
            languages: compiled,
            policy: HeaderValue::from_str(&policy)
                .expect("the policy is ASCII: keywords and base64"),
        })
    }
}

/// The waiting page's `<script>` element in one language: the script,
/// called with the words it needs.
fn script_element(code: &str, raw: &Texts) -> String {
    let mut out = String::with_capacity(WAITING_JS.len() + 2048);
    out.push_str("<script>");
    // Comment lines and indentation are for the reader of waiting.js, not
    // for a phone on a weak connection: a third of the script's weight.
    for line in WAITING_JS.lines() {
        let line = line.trim();
        if !line.is_empty() && !line.starts_with("//") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.truncate(out.trim_end().len());
    out.push_str("({");
    push_js_string(&mut out, "code");
    out.push(':');
    push_js_string(&mut out, code);
    for key in SCRIPT_KEYS {
        out.push(',');
        push_js_string(&mut out, key);
        out.push(':');
        push_js_string(&mut out, raw.get(key).unwrap_or_default());
    }
    out.push_str("});</script>");
    out
}

/// A CSP hash source: `sha256-` and the base64 of the element's text.
pub(super) fn source_hash(text: &str) -> String {
    format!(
        "sha256-{}",
        STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}
