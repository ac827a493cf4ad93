//! The article page in a real browser: headless Chromium driven through
//! ChromeDriver, with JavaScript on and off.
//!
//! Each test starts its own server, its own `chromedriver` on a free loopback
//! port and its own Chromium profile, and ends them all. Without Chromium or
//! ChromeDriver the tests say so loudly on stderr and pass, unless
//! `TRIBUNE_REQUIRE_BROWSER=1` (CI) makes that a failure. The accessibility
//! test needs axe-core (`npm install` at the repository root) on the same terms.
//!
//! The tests hold to the page's contract, not its incidental markup: the form
//! fields `option` and `stars`, the `#poll` and `#rating` anchors the forms
//! come back to, `li.poll-option` rows (`.chosen` with "(your vote)"), the
//! visible texts ("Poll conducted", "33 (31%)", "(1 vote)", "Your rating: 4/5",
//! "Vote", "Rate", "Copy link") and `.js-only` for what needs the script.

// A test that cannot go on should stop there, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ARTICLE, POLL, TestApp};
use serde_json::{Value, json};
use tempfile::TempDir;
use thirtyfour::prelude::*;
use thirtyfour::{BrowserLogEntry, ChromeCapabilities, LoggingPrefsLogLevel};

/// How long a test waits for the page to reach a state.
const WAIT: Duration = Duration::from_secs(10);
/// How long a live update may take to reach an open page.
const LIVE_WAIT: Duration = Duration::from_secs(5);

const TITLE: &str = "CSTO Summit 2015: New Threats and the Case for Soft Power";
/// Parts of the option labels that need no typographic quotes.
const OPTION_2: &str = "deter Russia";
const OPTION_3: &str = "dissolve Russia";
/// The rows after one vote for option 2 on the seed tallies 33/30/24/21.
const AFTER_VOTE_FOR_2: [&str; 4] = ["33 (30%)", "31 (29%)", "24 (22%)", "21 (19%)"];

// ---------------------------------------------------------------------------
// Finding the browser, or skipping loudly.

fn browser_required() -> bool {
    std::env::var("TRIBUNE_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// Panics when the browser is required, else says loudly that the test is skipped.
fn skip(reason: &str) {
    assert!(
        !browser_required(),
        "browser tests cannot run: {reason} (TRIBUNE_REQUIRE_BROWSER=1 makes this a failure)"
    );
    // Straight to the process's stderr: the test harness would hide `eprintln!` of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\n**** BROWSER TESTS SKIPPED: {reason} ****\n"
    );
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

struct Programs {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn programs() -> Option<Programs> {
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = find_program(&["chromedriver"]);
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some(Programs {
            chromium,
            chromedriver,
        }),
        (chromium, chromedriver) => {
            let mut missing = Vec::new();
            if chromium.is_none() {
                missing.push("chromium");
            }
            if chromedriver.is_none() {
                missing.push("chromedriver");
            }
            skip(&format!(
                "{} not found on PATH (Debian: apt-get install chromium chromium-driver)",
                missing.join(" and ")
            ));
            None
        }
    }
}

/// The axe-core script, installed by `npm install` at the repository root.
fn axe_source() -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(error) => {
            skip(&format!(
                "axe-core is not installed ({error}); run `npm install` at the repository root"
            ));
            None
        }
    }
}

// ---------------------------------------------------------------------------
// ChromeDriver and Chromium, started and ended by the test.

/// A `chromedriver` process of our own, killed (with its process group) on drop.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    async fn start(program: &Path) -> Self {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map(|addr| addr.port())
                .unwrap();
            let mut child = Command::new(program)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
            // chromedriver says on stdout when it listens; keep draining it after that.
            let (said, mut hear) = tokio::sync::mpsc::unbounded_channel::<String>();
            if let Some(stdout) = child.stdout.take() {
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                        let _ = said.send(line);
                    }
                });
            }
            let driver = Self {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            let started = tokio::time::timeout(WAIT, async {
                while let Some(line) = hear.recv().await {
                    if line.contains("started successfully") {
                        return Ok(());
                    }
                    failures.push(line);
                }
                Err(())
            })
            .await;
            if matches!(started, Ok(Ok(()))) && driver.ready().await {
                return driver;
            }
            failures.push(format!(
                "port {port}: chromedriver did not start ({started:?})"
            ));
        }
        panic!("chromedriver would not start: {failures:#?}");
    }

    async fn ready(&self) -> bool {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/status", self.url)).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The process group holds chromedriver and whatever it started and left behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Js {
    On,
    Off,
}

/// One headless Chromium with a fresh profile. Fields drop in order: the
/// session (thirtyfour quits it synchronously if the test panicked), then
/// chromedriver, then the profile folder.
struct Browser {
    driver: WebDriver,
    chromedriver: ChromeDriver,
    profile: TempDir,
}

impl Browser {
    /// A browser, or `None` (after a loud message) when Chromium is not installed.
    async fn start(js: Js) -> Option<Self> {
        let programs = programs()?;
        let chromedriver = ChromeDriver::start(&programs.chromedriver).await;
        let profile = tempfile::tempdir().unwrap();
        let mut caps: ChromeCapabilities = DesiredCapabilities::chrome();
        caps.set_binary(&programs.chromium.to_string_lossy())
            .unwrap();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,1024",
        ] {
            caps.add_arg(arg).unwrap();
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
            .unwrap();
        // Console messages, uncaught errors and failed loads, read back with `get_log`.
        caps.set_browser_log_level(LoggingPrefsLogLevel::All)
            .unwrap();
        if js == Js::Off {
            caps.add_experimental_option(
                "prefs",
                json!({ "profile.managed_default_content_settings.javascript": 2 }),
            )
            .unwrap();
        }
        let driver = WebDriver::new(chromedriver.url.clone(), caps)
            .await
            .unwrap();
        driver
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(30)),
                Some(Duration::ZERO),
            ))
            .await
            .unwrap();
        let browser = Self {
            driver,
            chromedriver,
            profile,
        };
        browser.check_javascript(js).await;
        if js == Js::On {
            browser
                .cdp(
                    "Page.addScriptToEvaluateOnNewDocument",
                    json!({ "source": WATCH_EVENT_STREAMS }),
                )
                .await;
        }
        Some(browser)
    }

    /// Proves the JavaScript setting took: a page whose script renames it.
    async fn check_javascript(&self, js: Js) {
        self.driver
            .goto("data:text/html,<title>script did not run</title><script>document.title='script ran'</script>")
            .await
            .unwrap();
        let title = self.driver.title().await.unwrap();
        let expected = if js == Js::On {
            "script ran"
        } else {
            "script did not run"
        };
        assert_eq!(
            title, expected,
            "JavaScript should be {js:?} in this browser"
        );
        // Nothing from this probe page counts against the article page.
        let _ = self.driver.get_log("browser").await;
    }

    /// A Chrome DevTools command, through chromedriver's `goog/cdp/execute`.
    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let url = format!(
            "{}/session/{}/goog/cdp/execute",
            self.chromedriver.url,
            self.driver.session_id()
        );
        let response = reqwest::Client::new()
            .post(url)
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{cmd}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// The page's event streams, as `WATCH_EVENT_STREAMS` sees them.
    async fn event_streams(&self) -> Value {
        self.js("return window.tribuneTestStreams ? window.tribuneTestStreams.map(s => ({url: s.url, state: s.readyState, polls: s.tribunePolls})) : [];")
            .await
    }

    /// Waits until the page has an open event stream on `path` that has had its first `poll` event.
    async fn wait_for_event_stream(&self, path: &str) {
        wait_until(
            WAIT,
            "the page's event stream to open and send the poll",
            || async {
                let streams = self.event_streams().await;
                let open = streams.as_array().is_some_and(|all| {
                    all.iter().any(|s| {
                        s["url"].as_str().is_some_and(|u| u.ends_with(path))
                            && s["state"] == 1
                            && s["polls"].as_u64().unwrap_or(0) >= 1
                    })
                });
                if open {
                    Ok(())
                } else {
                    Err(streams.to_string())
                }
            },
        )
        .await;
    }

    /// Ends the session, chromedriver and the profile.
    async fn finish(self) {
        let Self {
            driver,
            chromedriver,
            profile,
        } = self;
        let _ = driver.quit().await;
        drop(chromedriver);
        drop(profile);
    }

    /// The console messages since the last call.
    async fn console(&self) -> Vec<BrowserLogEntry> {
        self.driver.get_log("browser").await.unwrap()
    }

    async fn assert_no_console_errors(&self, when: &str) {
        let severe: Vec<_> = self
            .console()
            .await
            .into_iter()
            .filter(|e| e.level == "SEVERE")
            .collect();
        assert!(
            severe.is_empty(),
            "console errors {when}:\n{}",
            describe_log(&severe)
        );
    }

    async fn js(&self, script: &str) -> Value {
        self.driver
            .execute(script, Vec::new())
            .await
            .unwrap()
            .json()
            .clone()
    }
}

/// Run in every page before its own scripts: keeps each `EventSource` the page
/// opens, with a count of its `poll` events, so a test can wait for the stream.
const WATCH_EVENT_STREAMS: &str = "(() => {
  const Native = window.EventSource;
  if (typeof Native !== 'function') return;
  window.tribuneTestStreams = [];
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      this.tribunePolls = 0;
      this.addEventListener('poll', () => { this.tribunePolls += 1; });
      window.tribuneTestStreams.push(this);
    }
  };
})();";

fn describe_log(entries: &[BrowserLogEntry]) -> String {
    entries
        .iter()
        .map(|e| format!("  [{}] {:?}: {}", e.level, e.source, e.message))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// Waiting and looking.

/// A browser (None when it is missing and may be skipped) on the article page
/// of a fresh server.
async fn open_article(js: Js) -> Option<(Browser, TestApp)> {
    let browser = Browser::start(js).await?;
    let app = TestApp::spawn().await;
    browser.driver.goto(app.url(ARTICLE)).await.unwrap();
    Some((browser, app))
}

/// Polls `probe` until it gives `Ok`, or panics after `timeout` with the last state it saw.
async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(state) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen:\n{state}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn xpath_literal(text: &str) -> String {
    assert!(
        !text.contains('\''),
        "no apostrophes in searched text: {text}"
    );
    format!("'{text}'")
}

/// The innermost elements under `root` (itself included) whose text contains `text`.
fn innermost_with(text: &str) -> By {
    let t = xpath_literal(text);
    By::XPath(format!(
        "descendant-or-self::*[contains(normalize-space(.), {t}) and not(*[contains(normalize-space(.), {t})])]"
    ))
}

/// Whether `text` is on screen inside `root`.
async fn shows(root: &WebElement, text: &str) -> WebDriverResult<bool> {
    for element in root.find_all(innermost_with(text)).await? {
        if element.is_displayed().await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `text` is on screen in the page's body.
async fn page_shows(driver: &WebDriver, text: &str) -> WebDriverResult<bool> {
    shows(&driver.find(By::Tag("body")).await?, text).await
}

/// Rendered text with whitespace collapsed.
async fn visible_text(element: &WebElement) -> WebDriverResult<String> {
    Ok(element
        .text()
        .await?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" "))
}

/// The poll's rows as the reader sees them: (text, chosen).
async fn poll_rows(driver: &WebDriver) -> WebDriverResult<Vec<(String, bool)>> {
    let mut rows = Vec::new();
    for row in driver.find_all(By::Css("#poll li.poll-option")).await? {
        let chosen = row
            .class_name()
            .await?
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == "chosen");
        rows.push((visible_text(&row).await?, chosen));
    }
    Ok(rows)
}

fn describe_rows(rows: &[(String, bool)]) -> String {
    rows.iter()
        .map(|(text, chosen)| format!("  {}{text}", if *chosen { "[chosen] " } else { "" }))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until the poll shows `expected` results in order, the row with `chosen_label` marked
/// as the reader's vote (and no other).
async fn wait_for_results(
    driver: &WebDriver,
    what: &str,
    expected: &[String],
    chosen_label: Option<&str>,
) {
    wait_for_results_within(WAIT, driver, what, expected, chosen_label).await;
}

/// `wait_for_results`, giving up after `timeout`.
async fn wait_for_results_within(
    timeout: Duration,
    driver: &WebDriver,
    what: &str,
    expected: &[String],
    chosen_label: Option<&str>,
) {
    wait_until(timeout, what, || async {
        let rows = poll_rows(driver).await.map_err(|e| e.to_string())?;
        let results_ok = rows.len() == expected.len()
            && rows
                .iter()
                .zip(expected)
                .all(|((text, _), result)| text.contains(result.as_str()));
        let chosen_ok = rows.iter().all(|(text, chosen)| match chosen_label {
            Some(label) if text.contains(label) => *chosen && text.contains("(your vote)"),
            _ => !*chosen && !text.contains("(your vote)"),
        });
        if results_ok && chosen_ok {
            Ok(())
        } else {
            Err(describe_rows(&rows))
        }
    })
    .await;
}

/// The label a reader clicks for `input`.
async fn label_of(driver: &WebDriver, input: &WebElement) -> WebElement {
    if let Some(id) = input.attr("id").await.unwrap().filter(|id| !id.is_empty())
        && let Ok(label) = driver.find(By::Css(format!("label[for=\"{id}\"]"))).await
    {
        return label;
    }
    input.find(By::XPath("ancestor::label")).await.unwrap()
}

/// Clicks the middle of `input`'s label with the mouse, as a reader would: whatever
/// is drawn on top there (the label, or the input laid over it) gets the click.
async fn click_label(driver: &WebDriver, input: &WebElement) {
    let label = label_of(driver, input).await;
    label.scroll_into_view().await.unwrap();
    driver
        .action_chain()
        .move_to_element_center(&label)
        .click()
        .perform()
        .await
        .unwrap();
}

/// Chooses poll option `option` by its label, as a reader would.
async fn choose_option(driver: &WebDriver, option: u32) -> WebElement {
    let radio = driver
        .find(By::Css(format!(
            "#poll input[name=option][value=\"{option}\"]"
        )))
        .await
        .unwrap();
    click_label(driver, &radio).await;
    assert!(
        radio.is_selected().await.unwrap(),
        "clicking the label of option {option} selects it"
    );
    radio
}

/// Presses the submit button named `name` in the form of `field`.
async fn press_submit(field: &WebElement, name: &str) {
    let form = field.find(By::XPath("ancestor::form")).await.unwrap();
    let mut buttons = Vec::new();
    for button in form
        .find_all(By::Css(
            "button[type=submit], button:not([type]), input[type=submit]",
        ))
        .await
        .unwrap()
    {
        let label = match visible_text(&button).await.unwrap() {
            text if text.is_empty() => button.attr("value").await.unwrap().unwrap_or_default(),
            text => text,
        };
        if label == name {
            button.click().await.unwrap();
            return;
        }
        buttons.push(label);
    }
    panic!("no submit button {name:?} in the form; buttons: {buttons:?}");
}

/// The seed's rows as "votes (percent%)", from a poll JSON.
fn results_of(poll: &Value) -> Vec<String> {
    poll["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} ({}%)", o["votes"], o["percent"]))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The n-th rating form (0 = the top one), freshly looked up.
async fn rating_form(driver: &WebDriver, n: usize) -> Result<WebElement, String> {
    let forms = driver
        .find_all(By::XPath("//form[.//input[@name='stars']]"))
        .await
        .map_err(|e| e.to_string())?;
    forms
        .into_iter()
        .nth(n)
        .ok_or_else(|| format!("no rating form #{n}"))
}

/// The stars checked in each rating form, top to bottom.
async fn checked_stars(driver: &WebDriver) -> Vec<Option<String>> {
    let mut checked = Vec::new();
    for form in driver
        .find_all(By::XPath("//form[.//input[@name='stars']]"))
        .await
        .unwrap()
    {
        let mut value = None;
        for radio in form.find_all(By::Css("input[name=stars]")).await.unwrap() {
            if radio.is_selected().await.unwrap() {
                value = radio.value().await.unwrap();
            }
        }
        checked.push(value);
    }
    checked
}

/// Waits until the top rating widget shows `count_text` and "Your rating: N/5".
async fn wait_for_rating(driver: &WebDriver, what: &str, count_text: &str, yours: u8) {
    let yours_text = format!("Your rating: {yours}/5");
    wait_until(WAIT, what, || async {
        let form = rating_form(driver, 0).await?;
        let ok = shows(&form, count_text).await.map_err(|e| e.to_string())?
            && shows(&form, &yours_text).await.map_err(|e| e.to_string())?;
        if ok {
            Ok(())
        } else {
            Err(visible_text(&form).await.map_err(|e| e.to_string())?)
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// The tests.

/// The page renders without console errors or failed requests, shows the
/// title, the poll and its results, and costs at most four requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn article_renders_cleanly_in_few_requests() {
    let Some((browser, _app)) = open_article(Js::On).await else {
        return;
    };
    let driver = &browser.driver;

    for text in [TITLE, "Poll conducted", "33 (31%)"] {
        assert!(
            page_shows(driver, text).await.unwrap(),
            "{text:?} is visible"
        );
    }
    // The script ran: it reveals the controls that need it.
    wait_until(WAIT, "the script to reveal \"Copy link\"", || async {
        if page_shows(driver, "Copy link")
            .await
            .map_err(|e| e.to_string())?
        {
            Ok(())
        } else {
            Err("\"Copy link\" hidden".to_owned())
        }
    })
    .await;

    // The live stream is open too, so its request is among those checked below.
    browser
        .wait_for_event_stream("/api/v1/articles/csto-summit-2015/events")
        .await;

    // Requests: the document plus its resources. The EventSource stream is
    // left out by name: it is opened after the load event, carries updates
    // rather than the page's bytes, and Chrome lists it in Resource Timing only
    // once it ends (it is open here, so it is not listed).
    let timing = browser
        .js(
            "const n = performance.getEntriesByType('navigation').map(e => ({name: e.name, status: e.responseStatus}));
             const r = performance.getEntriesByType('resource').map(e => ({name: e.name, status: e.responseStatus, initiator: e.initiatorType}));
             return {navigation: n, resources: r};",
        )
        .await;
    let navigation = timing["navigation"].as_array().unwrap();
    let resources: Vec<&Value> = timing["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["name"].as_str().unwrap_or_default().ends_with("/events"))
        .collect();
    assert_eq!(navigation.len(), 1, "one document: {timing:#}");
    let requests = navigation.len() + resources.len();
    assert!(
        requests <= 4,
        "the first view takes {requests} requests, at most 4 allowed: {timing:#}"
    );
    for entry in navigation.iter().chain(resources.iter().copied()) {
        let status = entry["status"].as_u64().unwrap_or(0);
        assert!((200..400).contains(&status), "request failed: {entry}");
    }

    browser
        .assert_no_console_errors("on the article page")
        .await;

    // The console capture itself works: an uncaught error and a failed request are both seen.
    browser
        .js(
            "setTimeout(() => { throw new Error('tribune-canary-error') }, 0);
             fetch('/tribune-canary-missing').catch(() => {});
             return null;",
        )
        .await;
    let seen = std::sync::Mutex::new(Vec::new());
    wait_until(
        WAIT,
        "the console capture to report the canary error and the failed request",
        || async {
            let new = browser.console().await;
            let mut seen = seen.lock().unwrap();
            seen.extend(new.into_iter().filter(|e| e.level == "SEVERE"));
            let error = seen
                .iter()
                .any(|e| e.message.contains("tribune-canary-error"));
            let failed = seen
                .iter()
                .any(|e| e.message.contains("tribune-canary-missing"));
            if error && failed {
                Ok(())
            } else {
                Err(describe_log(&seen))
            }
        },
    )
    .await;

    browser.finish().await;
}

/// With JavaScript, a vote is sent without leaving the page, the results
/// replace the form with the choice marked, and a reload still shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voting_with_javascript_stays_on_the_page() {
    let Some((browser, app)) = open_article(Js::On).await else {
        return;
    };
    let driver = &browser.driver;
    browser
        .js("window.tribuneTestMarker = 'same document'; return null;")
        .await;

    let radio = choose_option(driver, 2).await;
    press_submit(&radio, "Vote").await;
    let expected = strings(&AFTER_VOTE_FOR_2);
    wait_for_results(
        driver,
        "the results with option 2 marked as the reader's vote",
        &expected,
        Some(OPTION_2),
    )
    .await;

    let page = browser
        .js("return {marker: window.tribuneTestMarker || null, navigations: performance.getEntriesByType('navigation').length, path: location.pathname};")
        .await;
    assert_eq!(
        page["marker"], "same document",
        "voting must not load a new page: {page}"
    );
    assert_eq!(page["navigations"], 1, "{page}");
    assert_eq!(page["path"], ARTICLE, "{page}");
    assert!(
        driver
            .find_all(By::Css("#poll input[name=option]"))
            .await
            .unwrap()
            .is_empty()
            || !driver
                .find(By::Css("#poll input[name=option]"))
                .await
                .unwrap()
                .is_displayed()
                .await
                .unwrap(),
        "after voting the form is replaced by the results"
    );
    assert_eq!(
        common::tallies(&app.poll_json(&reqwest::Client::new()).await),
        [33, 31, 24, 21]
    );
    browser.assert_no_console_errors("while voting").await;

    driver.refresh().await.unwrap();
    wait_for_results(
        driver,
        "the reader's vote after a reload",
        &expected,
        Some(OPTION_2),
    )
    .await;
    browser.assert_no_console_errors("after the reload").await;

    browser.finish().await;
}

/// When the answer to a vote or a rating is lost (the network fails after the
/// server got it), the script sends it once more with the same idempotency
/// key: the server answers it again, and nothing is counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_retried_with_the_same_key_and_counted_once() {
    let Some((browser, app)) = open_article(Js::On).await else {
        return;
    };
    let driver = &browser.driver;
    // The first answer to each write reaches the server and is then lost.
    browser
        .js("const real = window.fetch;
             window.tribuneKeys = [];
             const lost = new Set();
             window.fetch = async (url, init) => {
               const key = init && init.headers && init.headers['idempotency-key'];
               if (key) window.tribuneKeys.push([init.method, key]);
               const res = await real(url, init);
               if (key && !lost.has(init.method)) {
                 lost.add(init.method);
                 await res.text();
                 throw new TypeError('Failed to fetch');
               }
               return res;
             };
             return null;")
        .await;

    let radio = choose_option(driver, 2).await;
    press_submit(&radio, "Vote").await;
    wait_for_results(
        driver,
        "the results with option 2 marked, after a retry",
        &strings(&AFTER_VOTE_FOR_2),
        Some(OPTION_2),
    )
    .await;
    assert_eq!(
        common::tallies(&app.poll_json(&reqwest::Client::new()).await),
        [33, 31, 24, 21],
        "counted once"
    );

    let star = driver
        .find(By::Css("form input[name=stars][value=\"3\"]"))
        .await
        .unwrap();
    click_label(driver, &star).await;
    wait_for_rating(driver, "the rating of 3, after a retry", "(1 vote)", 3).await;
    let rating = app.rating_json(&reqwest::Client::new()).await;
    assert_eq!(rating["count"], 1);

    let keys = browser.js("return window.tribuneKeys;").await;
    let keys: Vec<(String, String)> = serde_json::from_value(keys).unwrap();
    assert_eq!(keys.len(), 4, "each write sent twice: {keys:?}");
    assert_eq!(keys[0], keys[1], "the vote retried with its key: {keys:?}");
    assert_eq!(
        keys[2], keys[3],
        "the rating retried with its key: {keys:?}"
    );
    assert_ne!(keys[0].1, keys[2].1, "a fresh key for each write");
    browser.assert_no_console_errors("while retrying").await;
    browser.finish().await;
}

/// Without JavaScript, the form posts, the server sends the reader back to
/// the poll, and the page shows the results with the choice marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voting_without_javascript_posts_the_form() {
    let Some((browser, app)) = open_article(Js::Off).await else {
        return;
    };
    let driver = &browser.driver;
    // What needs the script stays hidden.
    for element in driver.find_all(By::Css(".js-only")).await.unwrap() {
        assert!(
            !element.is_displayed().await.unwrap(),
            "a .js-only element shows without JavaScript"
        );
    }

    let radio = choose_option(driver, 2).await;
    press_submit(&radio, "Vote").await;
    // The form went to POST /polls/{poll}/vote; the 303 brought the reader back here.
    let back = app.url(&format!("{ARTICLE}#poll"));
    wait_until(WAIT, "the redirect back to the poll", || async {
        let url = driver.current_url().await.map_err(|e| e.to_string())?;
        if url.as_str() == back {
            Ok(())
        } else {
            Err(url.to_string())
        }
    })
    .await;
    let expected = strings(&AFTER_VOTE_FOR_2);
    wait_for_results(
        driver,
        "the results with option 2 marked",
        &expected,
        Some(OPTION_2),
    )
    .await;
    assert_eq!(
        common::tallies(&app.poll_json(&reqwest::Client::new()).await),
        [33, 31, 24, 21]
    );

    browser.finish().await;
}

/// With the keyboard alone: Tab to the top stars, arrows to four stars; the
/// rating is saved, shown back, and checked in both widgets after a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rating_with_the_keyboard_alone() {
    let Some((browser, app)) = open_article(Js::On).await else {
        return;
    };
    let driver = &browser.driver;

    let focused = "const e = document.activeElement;
         return e ? {tag: e.tagName, name: e.getAttribute('name'), value: e.value, checked: !!e.checked,
                     text: (e.innerText || '').trim().slice(0, 40),
                     first_star: e === document.querySelector('input[name=stars]')} : null;";
    let mut path = Vec::new();
    loop {
        driver
            .action_chain()
            .send_keys(Key::Tab)
            .perform()
            .await
            .unwrap();
        let now = browser.js(focused).await;
        path.push(now.clone());
        if now["name"] == "stars" {
            break;
        }
        assert!(
            path.len() < 30,
            "Tab never reached the stars; focus went through {path:#?}"
        );
    }
    let now = path.last().unwrap();
    assert_eq!(
        now["first_star"], true,
        "Tab first reaches the first star of the top widget: {path:#?}"
    );
    assert_eq!(now["value"], "1", "{now}");

    for stars in ["2", "3", "4"] {
        driver
            .action_chain()
            .send_keys(Key::Right)
            .perform()
            .await
            .unwrap();
        let now = browser.js(focused).await;
        assert_eq!(
            (now["value"].as_str(), now["checked"].as_bool()),
            (Some(stars), Some(true)),
            "ArrowRight: {now}"
        );
    }

    wait_for_rating(
        driver,
        "the rating of 4 to be saved and shown",
        "(1 vote)",
        4,
    )
    .await;
    wait_until(WAIT, "the server to hold the reader's 4 stars", || async {
        let rating = app.rating_json(&reqwest::Client::new()).await;
        if rating["count"] == 1 && rating["average"] == 4.0 {
            Ok(())
        } else {
            Err(rating.to_string())
        }
    })
    .await;
    browser.assert_no_console_errors("while rating").await;

    driver.refresh().await.unwrap();
    wait_for_rating(driver, "the reader's rating after a reload", "(1 vote)", 4).await;
    let checked = checked_stars(driver).await;
    assert_eq!(
        checked,
        [Some("4".to_owned()), Some("4".to_owned())],
        "4 stars checked in the top and bottom widgets"
    );
    browser.assert_no_console_errors("after the reload").await;

    browser.finish().await;
}

/// Without JavaScript, a star and "Rate" post the form; the 303 comes back
/// to the rating, which shows the count and the reader's rating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rating_without_javascript_posts_the_form() {
    let Some((browser, app)) = open_article(Js::Off).await else {
        return;
    };
    let driver = &browser.driver;

    let form = rating_form(driver, 0).await.unwrap();
    let star = form
        .find(By::Css("input[name=stars][value=\"3\"]"))
        .await
        .unwrap();
    click_label(driver, &star).await;
    assert!(
        star.is_selected().await.unwrap(),
        "clicking the third star's label selects it"
    );
    press_submit(&star, "Rate").await;

    let back = app.url(&format!("{ARTICLE}#rating"));
    wait_until(WAIT, "the redirect back to the rating", || async {
        let url = driver.current_url().await.map_err(|e| e.to_string())?;
        if url.as_str() == back {
            Ok(())
        } else {
            Err(url.to_string())
        }
    })
    .await;
    wait_for_rating(driver, "the saved rating", "(1 vote)", 3).await;
    assert_eq!(
        checked_stars(driver).await,
        [Some("3".to_owned()), Some("3".to_owned())]
    );

    browser.finish().await;
}

async fn axe_violations(browser: &Browser, axe: &str) -> Vec<Value> {
    if browser.js("return typeof window.axe;").await != "object" {
        browser.driver.execute(axe, Vec::new()).await.unwrap();
    }
    let result = browser
        .driver
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']})
                .then(r => done({violations: r.violations, passes: r.passes.length}))
                .catch(e => done({error: String(e)}));",
            Vec::new(),
        )
        .await
        .unwrap()
        .json()
        .clone();
    assert!(result["error"].is_null(), "axe failed: {result}");
    // axe really looked: the rules the page passes are counted too.
    assert!(
        result["passes"].as_u64().unwrap_or(0) > 10,
        "axe checked almost nothing: {result}"
    );
    result["violations"].as_array().unwrap().clone()
}

fn describe_violations(violations: &[Value]) -> String {
    violations
        .iter()
        .map(|v| {
            let node = &v["nodes"][0];
            format!(
                "  {} ({}): {}\n    {} node(s); first {} {}",
                v["id"].as_str().unwrap_or("?"),
                v["impact"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap_or(""),
                v["nodes"].as_array().map_or(0, Vec::len),
                node["target"],
                node["html"].as_str().unwrap_or(""),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// axe-core finds nothing on the article page, nor on it after voting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accessibility_axe_finds_no_violations() {
    let Some(axe) = axe_source() else { return };
    let Some((browser, _app)) = open_article(Js::On).await else {
        return;
    };
    let driver = &browser.driver;

    let before = axe_violations(&browser, &axe).await;
    let radio = choose_option(driver, 2).await;
    press_submit(&radio, "Vote").await;
    let expected = strings(&AFTER_VOTE_FOR_2);
    wait_for_results(
        driver,
        "the results after voting",
        &expected,
        Some(OPTION_2),
    )
    .await;
    let after = axe_violations(&browser, &axe).await;

    assert!(
        before.is_empty() && after.is_empty(),
        "axe-core violations\non the article page:\n{}\nafter voting:\n{}",
        describe_violations(&before),
        describe_violations(&after)
    );
    browser.finish().await;
}

/// A vote cast by another reader reaches the open page without a reload,
/// and is not marked as this reader's vote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_results_reach_an_open_page() {
    let Some((browser, app)) = open_article(Js::On).await else {
        return;
    };
    let driver = &browser.driver;
    browser
        .js("window.tribuneTestMarker = 'same document'; return null;")
        .await;
    wait_for_results(
        driver,
        "the seed results",
        &strings(&["33 (31%)", "30 (28%)", "24 (22%)", "21 (19%)"]),
        None,
    )
    .await;

    // The page has its stream open and has had the current state, so what
    // follows is pushed to it as a change.
    browser
        .wait_for_event_stream("/api/v1/articles/csto-summit-2015/events")
        .await;
    // Another reader votes through the API.
    let other = app.reader();
    let response = other
        .post(app.url(&format!("/api/v1/polls/{POLL}/votes")))
        .json(&json!({ "option": 3 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let poll: Value = response.json().await.unwrap();
    let expected = results_of(&poll);
    assert!(expected[2].starts_with("25 "), "{expected:?}");

    let started = Instant::now();
    wait_for_results_within(
        LIVE_WAIT,
        driver,
        "the other reader's vote to show on the open page",
        &expected,
        None,
    )
    .await;
    eprintln!("live update reached the page in {:?}", started.elapsed());
    let rows = poll_rows(driver).await.unwrap();
    assert!(
        rows.iter()
            .all(|(text, chosen)| !chosen && !text.contains("(your vote)")),
        "another reader's vote is not this reader's: {}",
        describe_rows(&rows)
    );
    assert!(rows.iter().any(|(text, _)| text.contains(OPTION_3)));
    let marker = browser.js("return window.tribuneTestMarker || null;").await;
    assert_eq!(marker, "same document", "the update came without a reload");
    browser
        .assert_no_console_errors("while receiving live results")
        .await;

    browser.finish().await;
}

/// A reader who already voted elsewhere (another tab) and votes again sees
/// their earlier vote marked, and is told why the new choice was not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_vote_from_a_stale_page_shows_the_first_and_says_so() {
    let Some((browser, app)) = open_article(Js::On).await else {
        return;
    };
    let driver = &browser.driver;
    // "Another tab" of the same reader votes for option 2 (same cookies).
    let status = browser
        .js(&format!(
            "return fetch('/api/v1/polls/{}/votes', {{method: 'POST', headers: {{'content-type': 'application/json'}}, body: '{{\"option\": 2}}'}}).then(r => r.status);",
            common::POLL
        ))
        .await;
    assert_eq!(status, 201);

    let radio = choose_option(driver, 3).await;
    press_submit(&radio, "Vote").await;
    wait_for_results(
        driver,
        "the earlier vote for option 2 marked",
        &strings(&AFTER_VOTE_FOR_2),
        Some(OPTION_2),
    )
    .await;
    let poll = driver
        .find(By::Css("#poll"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        poll.contains("You have already voted in this poll."),
        "{poll}"
    );
    assert_eq!(
        common::tallies(&app.poll_json(&reqwest::Client::new()).await),
        [33, 31, 24, 21],
        "the second choice was not counted"
    );
    browser.finish().await;
}

/// Two readers in separate browsers: what one votes, the other sees move
/// without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_in_one_browser_moves_the_results_in_another() {
    let Some(voter) = Browser::start(Js::On).await else {
        return;
    };
    let Some(watcher) = Browser::start(Js::On).await else {
        return;
    };
    let app = TestApp::spawn().await;
    watcher.driver.goto(app.url(ARTICLE)).await.unwrap();
    watcher
        .js("window.tribuneTestMarker = 'same document'; return null;")
        .await;
    watcher
        .wait_for_event_stream("/api/v1/articles/csto-summit-2015/events")
        .await;

    voter.driver.goto(app.url(ARTICLE)).await.unwrap();
    let radio = choose_option(&voter.driver, 2).await;
    press_submit(&radio, "Vote").await;
    let after = strings(&AFTER_VOTE_FOR_2);
    wait_for_results(&voter.driver, "the voter's results", &after, Some(OPTION_2)).await;

    // The watcher sees the counts move, not marked as its own vote.
    wait_for_results_within(
        LIVE_WAIT,
        &watcher.driver,
        "the vote to reach the other browser",
        &after,
        None,
    )
    .await;
    let marker = watcher.js("return window.tribuneTestMarker || null;").await;
    assert_eq!(marker, "same document", "the update came without a reload");
    watcher
        .assert_no_console_errors("while following another browser's vote")
        .await;
    voter.finish().await;
    watcher.finish().await;
}

/// With every stream slot taken, the page is refused its stream and re-reads
/// the results instead: a vote still shows without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_a_stream_the_page_rereads_the_results() {
    let Some(browser) = Browser::start(Js::On).await else {
        return;
    };
    let app = TestApp::spawn_with(|c| c.max_streams = Some(0)).await;
    let driver = &browser.driver;
    driver.goto(app.url(ARTICLE)).await.unwrap();
    browser
        .js("window.tribuneTestMarker = 'same document'; return null;")
        .await;
    // The page tried its stream and was turned away.
    wait_until(WAIT, "the page's refused event stream", || async {
        let streams = browser.event_streams().await;
        let refused = streams
            .as_array()
            .is_some_and(|all| !all.is_empty() && all.iter().all(|s| s["state"] == 2));
        if refused {
            Ok(())
        } else {
            Err(streams.to_string())
        }
    })
    .await;

    let other = app.reader();
    let response = other
        .post(app.url(&format!("/api/v1/polls/{POLL}/votes")))
        .json(&json!({ "option": 3 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let expected = results_of(&response.json().await.unwrap());

    wait_for_results_within(
        Duration::from_secs(15),
        driver,
        "the page to re-read the results",
        &expected,
        None,
    )
    .await;
    let marker = browser.js("return window.tribuneTestMarker || null;").await;
    assert_eq!(marker, "same document", "the update came without a reload");
    browser.finish().await;
}

/// On paper, the print view shows each option's whole result, "33 (31%)",
/// inside the page: the label wraps, the result is never cut at the right edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_print_view_shows_every_result_whole_on_paper() {
    let Some(browser) = Browser::start(Js::Off).await else {
        return;
    };
    let app = TestApp::spawn().await;
    // Print media, as wide as A4 inside the print sheet's margins (178 mm).
    browser
        .cdp("Emulation.setEmulatedMedia", json!({ "media": "print" }))
        .await;
    browser
        .cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 673, "height": 1000, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
    browser
        .driver
        .goto(app.url(&format!("{ARTICLE}/print")))
        .await
        .unwrap();
    assert_eq!(
        browser.js("return matchMedia('print').matches;").await,
        true
    );

    let rows = browser
        .js(
            "return [...document.querySelectorAll('.poll-option')].map(row => {
               const result = row.querySelector('.poll-result');
               return { text: result.textContent.trim(),
                        overflow: result.scrollWidth - result.clientWidth,
                        right: result.getBoundingClientRect().right,
                        rowRight: row.getBoundingClientRect().right,
                        pageRight: document.documentElement.clientWidth };
             });",
        )
        .await;
    let rows = rows.as_array().unwrap();
    let texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["33 (31%)", "30 (28%)", "24 (22%)", "21 (19%)"]);
    for row in rows {
        assert_eq!(row["overflow"], 0, "the result is cut: {row}");
        let right = row["right"].as_f64().unwrap();
        assert!(
            right <= row["rowRight"].as_f64().unwrap() + 0.5
                && right <= row["pageRight"].as_f64().unwrap() + 0.5,
            "the result runs past the edge: {row}"
        );
    }

    browser.finish().await;
}
