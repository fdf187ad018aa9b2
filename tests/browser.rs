//! A real headless Chromium driven through `chromedriver` (WebDriver, with
//! the fantoccini client), for the suites that test pages as visitors and
//! operators see them.
//!
//! ```ignore
//! let browser = Browser::options().javascript(false).language("it").open().await;
//! browser.client.goto(&gw.url("/echo/vaccini")).await?;
//! browser.close().await;
//! ```
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium`,
//! `chromium-driver`; `scripts/test` installs them when missing). Without
//! them the tests fail, never skip.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::{free_port, plain_client};

pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a condition may take before a test gives up: generous, since
/// Chromium starts slowly on a busy 2-core machine. Not a threshold on
/// speed: every wait returns as soon as its condition holds.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A headless Chromium session with a fresh profile, and the
/// `chromedriver` that runs it. Both are killed when this is dropped.
pub struct Browser {
    pub client: Client,
    profile: std::path::PathBuf,
    _driver: ChromeDriver,
}

/// How to start a [`Browser`]: JavaScript on, 1280x900, English.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    javascript: bool,
    window: (u32, u32),
    language: String,
}

impl Browser {
    /// A browser with the default [`BrowserOptions`].
    pub async fn open() -> Browser {
        Browser::options().open().await
    }

    pub fn options() -> BrowserOptions {
        BrowserOptions {
            javascript: true,
            window: (1280, 900),
            language: "en-US,en".to_owned(),
        }
    }

    /// Ends the WebDriver session; dropping the browser then kills what
    /// is left of the processes.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl BrowserOptions {
    /// With `false`, pages' scripts never run: as a visitor who turned
    /// JavaScript off sees them (`<noscript>` applies). WebDriver's own
    /// scripts (`execute`) still run, in an isolated world.
    pub fn javascript(mut self, enabled: bool) -> Self {
        self.javascript = enabled;
        self
    }

    /// The window's size, which in headless Chromium is the viewport's,
    /// in CSS pixels.
    pub fn window_size(mut self, width: u32, height: u32) -> Self {
        self.window = (width, height);
        self
    }

    /// The browser's languages, as sent in `Accept-Language`, e.g. `"it"`
    /// or `"it-IT,it"`.
    pub fn language(mut self, languages: &str) -> Self {
        self.language = languages.to_owned();
        self
    }

    pub async fn open(self) -> Browser {
        static OPENED: AtomicU64 = AtomicU64::new(0);
        let driver = ChromeDriver::start().await;
        let profile = std::env::temp_dir().join(format!(
            "anteroom-test-chromium-{}-{}",
            std::process::id(),
            OPENED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&profile).expect("a profile directory");
        let (width, height) = self.window;
        let first_language = self.language.split(',').next().unwrap_or("en");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--lang={first_language}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut prefs = json!({ "intl": { "accept_languages": self.language } });
        if !self.javascript {
            // Both, belt and braces: the content setting is what a
            // visitor's "JavaScript: off" sets; the Blink setting turns
            // scripting off in the renderer itself.
            args.push("--blink-settings=scriptEnabled=false".to_owned());
            prefs["profile"] = json!({ "managed_default_content_settings": { "javascript": 2 } });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args, "prefs": prefs }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
            .expect("chromedriver starts a Chromium session");
        Browser {
            client,
            profile,
            _driver: driver,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A `chromedriver` on a free port, in a process group of its own so
/// that the Chromium it starts goes with it: the group is killed when
/// dropped.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        assert!(
            std::path::Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is needed for the browser tests (scripts/test installs the Debian package chromium)"
        );
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is needed for the browser tests (scripts/test installs the Debian package chromium-driver)");
        let driver = ChromeDriver { child, port };
        let status = format!("{}/status", driver.url());
        until("chromedriver is ready", async || {
            let response = plain_client().get(&status).send().await.ok()?;
            let body: Value = response.json().await.ok()?;
            (body["value"]["ready"] == true).then_some(())
        })
        .await;
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (process_group(0)).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// Resizes the window so that the viewport (`innerWidth` x
/// `innerHeight`, in CSS pixels) is `width` x `height`: WebDriver sets
/// the outer size, and even headless Chromium keeps some of it for
/// itself.
pub async fn set_viewport(page: &Client, width: u32, height: u32) {
    page.set_window_size(width, height).await.expect("resize");
    let inner = run(page, "return [window.innerWidth, window.innerHeight];").await;
    let inner_width = inner[0].as_u64().expect("a width") as u32;
    let inner_height = inner[1].as_u64().expect("a height") as u32;
    let outer = (
        width + width.saturating_sub(inner_width),
        height + height.saturating_sub(inner_height),
    );
    if outer != (width, height) {
        page.set_window_size(outer.0, outer.1)
            .await
            .expect("resize");
    }
    let inner = run(page, "return [window.innerWidth, window.innerHeight];").await;
    assert_eq!(inner, json!([width, height]), "the viewport's size");
}

/// Polls `check` until it gives a value, for at most [`PATIENCE`], then
/// panics naming `what`.
pub async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `script` (a function body; `return` gives the value) in the page.
pub async fn run(page: &Client, script: &str) -> Value {
    page.execute(script, vec![])
        .await
        .unwrap_or_else(|error| panic!("script {script:?}: {error}"))
}

pub async fn exists(page: &Client, selector: &str) -> bool {
    !page
        .find_all(Locator::Css(selector))
        .await
        .expect("find runs")
        .is_empty()
}

pub async fn attribute(page: &Client, selector: &str, name: &str) -> Option<String> {
    let element = page.find(Locator::Css(selector)).await.ok()?;
    element.attr(name).await.ok().flatten()
}

pub async fn text(page: &Client, selector: &str) -> String {
    page.find(Locator::Css(selector))
        .await
        .expect("the element")
        .text()
        .await
        .expect("its text")
}

pub async fn click(page: &Client, selector: &str) {
    page.find(Locator::Css(selector))
        .await
        .unwrap_or_else(|error| panic!("{selector}: {error}"))
        .click()
        .await
        .unwrap_or_else(|error| panic!("clicking {selector}: {error}"));
}

pub async fn type_into(page: &Client, selector: &str, text: &str) {
    let input = page.find(Locator::Css(selector)).await.expect("the input");
    input.clear().await.expect("clear");
    input.send_keys(text).await.expect("type");
}

/// The upstream's echo, when the browser shows it (Chromium shows a JSON
/// answer as text in a `<pre>`); `None` while it shows anything else.
pub async fn shown_json(page: &Client) -> Option<Value> {
    let shown = page.find(Locator::Css("body > pre")).await.ok()?;
    serde_json::from_str(&shown.text().await.ok()?).ok()
}

/// Nothing on the page sticks out sideways at a 360 x 740 viewport, nor at
/// 200% zoom. Browser zoom shrinks the viewport in CSS pixels, so 200% on a
/// 360 px phone is a 180 px wide viewport: emulated exactly by a 180 x 370
/// window. CSS `zoom: 2` on the body at 360 px is checked too (it is how a
/// page looks when only the text is enlarged inside an unchanged viewport).
pub async fn assert_phone_layouts(page: &Client, what: &str) {
    set_viewport(page, 360, 740).await;
    assert_fits_sideways(page, &format!("{what}, phone")).await;
    set_viewport(page, 180, 370).await;
    assert_fits_sideways(page, &format!("{what}, phone at 200% zoom")).await;
    set_viewport(page, 360, 740).await;
    run(page, "document.body.style.zoom = '2'; return null;").await;
    assert_fits_sideways(page, &format!("{what}, phone with the body zoomed 2x")).await;
    run(page, "document.body.style.zoom = ''; return null;").await;
}

/// No horizontal scroll, and no element reaching past the viewport's right
/// edge (which `overflow: hidden` would hide from the scroll width).
pub async fn assert_fits_sideways(page: &Client, what: &str) {
    let layout = run(
        page,
        "const root = document.documentElement;\
         const wide = [...document.body.querySelectorAll('*')]\
             .filter(element => element.getBoundingClientRect().right > root.clientWidth + 0.5)\
             .map(element => element.tagName + '#' + element.id + '.' + element.className);\
         return {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, wide};",
    )
    .await;
    let (scroll_width, client_width) = (
        layout["scrollWidth"].as_u64().expect("a width"),
        layout["clientWidth"].as_u64().expect("a width"),
    );
    assert!(
        scroll_width <= client_width && layout["wide"] == json!([]),
        "{what}: the page scrolls sideways: {layout}"
    );
}

/// Takes a screenshot of what the browser shows into
/// `docs/screenshots/NAME.png`, for the README.
pub async fn screenshot(page: &Client, name: &str) {
    let png = page.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = screenshots_dir().join(format!("{name}.png"));
    std::fs::write(&path, png)
        .unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
}

/// Where the README's screenshots live (made if missing).
pub fn screenshots_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("docs/screenshots");
    dir
}
