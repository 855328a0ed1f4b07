//! The sign-in journey in a real headless Chromium: a stranger is sent to the login
//! page, a wrong password is refused, the right one lands on the page asked for; the
//! Account page creates an API token shown once (which then works, read-only, over
//! HTTP); the Audit page lists what was done; logging out ends the session.
//!
//! Needs `/usr/bin/chromium` and `chromedriver` (Debian: `chromium chromium-driver`).
//! Without them the test prints `SKIPPED: ...` and passes, except with `CI=true`.

mod support;

use fantoccini::{Client, Locator};
use support::browser::{WAIT, find, in_browser, load_after_click, screenshot, table_rows, text};
use support::{PASSWORD, USER};

#[tokio::test(flavor = "multi_thread")]
async fn login_account_token_audit_logout() {
    in_browser("sign-in journey", journey).await;
}

async fn journey(c: Client) {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.ready().await;

    // 1. A stranger asking for the DNC page gets the login form.
    c.goto(&app.url("/dnc")).await.unwrap();
    let at = c.current_url().await.unwrap();
    assert_eq!((at.path(), at.query()), ("/login", Some("next=%2Fdnc")));

    // 2. A wrong password is refused with a message that does not say which part was wrong.
    find(&c, "#login-form input[name=username]").await.send_keys(USER).await.unwrap();
    find(&c, "#login-form input[name=password]").await.send_keys("not it at all").await.unwrap();
    load_after_click(&c, "#login-form button[type=submit]").await;
    assert_eq!(text(&c, "#login-error").await, "Wrong username or password.");

    // 3. The right one lands on the page first asked for, with the user's name shown.
    find(&c, "#login-form input[name=username]").await.send_keys(USER).await.unwrap();
    find(&c, "#login-form input[name=password]").await.send_keys(PASSWORD).await.unwrap();
    load_after_click(&c, "#login-form button[type=submit]").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/dnc");
    assert_eq!(text(&c, "#account-link").await, USER);

    // 4. Account: a read-only token, shown once.
    load_after_click(&c, "#account-link").await;
    assert_eq!(text(&c, "#session-count").await, "1");
    find(&c, "#token-create input[name=name]").await.send_keys("grafana").await.unwrap();
    find(&c, "#token-create input[name=read_only]").await.click().await.unwrap();
    load_after_click(&c, "#token-create button[type=submit]").await;
    let token = text(&c, "#token-value").await;
    assert!(token.starts_with("dlr_"), "{token}");
    let rows = table_rows(&c, "#tokens tbody tr").await;
    let row = rows.iter().find(|r| r[0] == "grafana").expect("the token is listed");
    assert_eq!(row[2], "read-only");
    assert!(!row.concat().contains(&token[10..]), "only the prefix is listed");
    screenshot(&c, "account.png").await;

    // The token works for reading and is refused for writing.
    let get = app.anon.get(app.url("/api/leads")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 200);
    let post =
        app.anon.post(app.url("/api/opt-out")).bearer_auth(&token).json(&serde_json::json!({"phone": "+14152370100"}));
    assert_eq!(post.send().await.unwrap().status().as_u16(), 403);

    // 5. Reloading the account page never shows the token again.
    c.goto(&app.url("/account")).await.unwrap();
    assert!(c.find(Locator::Id("token-value")).await.is_err());

    // 6. The audit log names who created it.
    load_after_click(&c, "header.top nav a[href='/audit']").await;
    let audit = table_rows(&c, "#audit tbody tr").await;
    assert!(
        audit.iter().any(|r| r[1] == USER && r[2].contains("token.create") && r[2].contains("grafana")),
        "{audit:?}"
    );
    assert!(audit.iter().any(|r| r[1] == USER && r[2].contains("login")), "{audit:?}");

    // 7. Log out: the dashboard asks for a login again.
    load_after_click(&c, "#logout-form button[type=submit]").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    c.goto(&app.url("/")).await.unwrap();
    c.wait().at_most(WAIT).for_element(Locator::Id("login-form")).await.expect("the login form again");
}
