//! The Create Call form, pair by pair, for every AMD mode (providers.md §1.1, §1.2).

use super::*;

fn client() -> TwilioClient {
    TwilioClient::new(Settings {
        api_base: "http://127.0.0.1:1/".into(),
        account_sid: "AC0".into(),
        auth_token: Secret::new("t"),
        public_url: "https://d.example.com/".into(),
        ring_timeout_seconds: 25,
        max_call_seconds: 600,
        request_timeout: Duration::from_secs(15),
    })
    .unwrap()
}

fn form(amd: AmdMode) -> Vec<(&'static str, String)> {
    client().create_form(&CallRequest {
        attempt_id: 7,
        to: "+14155550123".into(),
        from: "+12025550101".into(),
        from_provider_id: None,
        amd,
    })
}

/// What every mode sends, in order, before the AMD parameters.
fn common() -> Vec<(&'static str, String)> {
    let hook = |kind: &str| format!("https://d.example.com/webhooks/twilio/{kind}?attempt_id=7");
    vec![
        ("To", "+14155550123".into()),
        ("From", "+12025550101".into()),
        ("Url", hook("voice")),
        ("Method", "POST".into()),
        ("StatusCallback", hook("status")),
        ("StatusCallbackMethod", "POST".into()),
        ("StatusCallbackEvent", "initiated".into()),
        ("StatusCallbackEvent", "ringing".into()),
        ("StatusCallbackEvent", "answered".into()),
        ("StatusCallbackEvent", "completed".into()),
        ("Timeout", "25".into()),
        ("TimeLimit", "600".into()),
    ]
}

fn with(extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut all = common();
    all.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    all
}

#[test]
fn create_form_pairs_for_each_amd_mode() {
    assert_eq!(form(AmdMode::Off), common(), "off: no MachineDetection at all");
    assert_eq!(form(AmdMode::Enable), with(&[("MachineDetection", "Enable")]));
    assert_eq!(form(AmdMode::DetectMessageEnd), with(&[("MachineDetection", "DetectMessageEnd")]));
    assert_eq!(
        form(AmdMode::Async),
        with(&[
            ("MachineDetection", "DetectMessageEnd"),
            ("AsyncAmd", "true"),
            ("AsyncAmdStatusCallback", "https://d.example.com/webhooks/twilio/amd?attempt_id=7"),
            ("AsyncAmdStatusCallbackMethod", "POST"),
        ])
    );
}

#[test]
fn form_repeats_status_callback_events_when_encoded() {
    let encoded = serde_urlencoded::to_string(form(AmdMode::Enable)).unwrap();
    assert!(encoded.contains(
        "StatusCallbackEvent=initiated&StatusCallbackEvent=ringing&StatusCallbackEvent=answered&StatusCallbackEvent=completed"
    ));
    assert!(
        encoded.contains("StatusCallback=https%3A%2F%2Fd.example.com%2Fwebhooks%2Ftwilio%2Fstatus%3Fattempt_id%3D7")
    );
    let c = client();
    assert_eq!(c.calls_url(), "http://127.0.0.1:1/2010-04-01/Accounts/AC0/Calls.json");
    assert_eq!(c.call_url("CA1"), "http://127.0.0.1:1/2010-04-01/Accounts/AC0/Calls/CA1.json");
}

#[test]
fn a_listed_call_with_an_unknown_status_is_kept_as_in_progress() {
    let call = |status: &str| CallResource {
        sid: "CA1".into(),
        status: status.into(),
        answered_by: None,
        duration: None,
        date_created: Some("Tue, 01 Jan 2030 12:00:05 +0000".into()),
    };
    let listed = call("awaiting-carrier").listed();
    assert_eq!((listed.call_id.as_str(), listed.status), ("CA1", Status::InProgress));
    assert_eq!(listed.created_at.map(|t| t.to_rfc3339()).as_deref(), Some("2030-01-01T12:00:05+00:00"));
    assert_eq!(call("queued").listed().status, Status::Dialing);
    // Fetching by id still refuses to guess (the reconciler waits on the error).
    assert!(matches!(call("awaiting-carrier").snapshot(), Err(ProviderError::Retry(_))));
}
