//! A WebDriver session with headless Chromium through `chromedriver` (the
//! Debian packages the browser tests install): start the driver on a free
//! loopback port, open a session, load a URL, run an async script and read
//! its result, and stop it all on drop.
//!
//! Only the four W3C WebDriver calls the `browser` scenario needs, as JSON
//! over HTTP to the driver on loopback; it knows nothing of Shoal.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running chromedriver with one Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
}

impl Browser {
    /// Starts `chromedriver` and a headless `chromium` session whose profile
    /// lives in `profile` (a fresh directory: an empty IndexedDB).
    pub fn start(chromedriver: &Path, chromium: &Path, profile: &Path) -> Result<Browser> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {}", chromedriver.display()))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into();
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            agent,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !browser.ready() {
            if Instant::now() > deadline {
                bail!("chromedriver did not answer on port {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let args = [
            "--headless".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-background-networking".to_string(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        }}});
        let created = browser.call("POST", "/session", Some(capabilities))?;
        browser.session = created["sessionId"]
            .as_str()
            .context("no sessionId in chromedriver's answer")?
            .to_string();
        // Scripts may run for minutes (a 10,000-record catch-up on a slow machine).
        browser.call(
            "POST",
            &format!("/session/{}/timeouts", browser.session),
            Some(json!({ "script": 600_000 })),
        )?;
        Ok(browser)
    }

    fn ready(&self) -> bool {
        self.agent
            .get(format!("{}/status", self.base))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
            .is_some_and(|status| status["value"]["ready"] == true)
    }

    /// One WebDriver call: its `value`, or the driver's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut response = match method {
            "POST" => self.agent.post(&url).send_json(body.unwrap_or(json!({})))?,
            "DELETE" => self.agent.delete(&url).call()?,
            _ => self.agent.get(&url).call()?,
        };
        let status = response.status();
        let answer: Value = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_json()
            .with_context(|| format!("chromedriver's answer to {method} {path}"))?;
        if !status.is_success() {
            bail!(
                "chromedriver {method} {path}: {} {}",
                answer["value"]["error"],
                answer["value"]["message"]
            );
        }
        Ok(answer["value"].clone())
    }

    /// Loads `url` in the session's tab.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.call(
            "POST",
            &format!("/session/{}/url", self.session),
            Some(json!({ "url": url })),
        )?;
        Ok(())
    }

    /// Runs `function` (JavaScript source of an async function of one
    /// argument) in the tab with `arg`, and returns what it resolves to; a
    /// rejection is an error carrying its message.
    pub fn run(&self, function: &str, arg: Value) -> Result<Value> {
        let script = format!(
            "const done = arguments[arguments.length - 1];\n\
             ({function})(arguments[0]).then(\n\
               (ok) => done({{ ok }}),\n\
               (e) => done({{ error: String((e && (e.code ? e.code + ': ' + e.message : e.stack)) || e) }}));"
        );
        let answer = self.call(
            "POST",
            &format!("/session/{}/execute/async", self.session),
            Some(json!({ "script": script, "args": [arg] })),
        )?;
        match answer.get("error") {
            Some(error) => bail!("in the tab: {}", error.as_str().unwrap_or_default()),
            None => Ok(answer["ok"].clone()),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
