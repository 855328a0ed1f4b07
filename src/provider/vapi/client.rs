//! Vapi REST client (providers.md §3.1): create a call with a saved assistant from
//! one of the account's phone numbers, fetch and list calls for reconciliation, and
//! list the account's phone numbers. Bearer private API key.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Secret;
use crate::domain::status::Status;
use crate::provider::vapi::{classify, ended, map_progress};
use crate::provider::{CallRequest, CallSnapshot, OwnedNumber, Provider, ProviderError};

pub struct Settings {
    /// `https://api.vapi.ai`.
    pub api_base: String,
    pub api_key: Secret,
    /// The saved assistant (`assistantId`).
    pub assistant_id: String,
    /// Sent back by Vapi on every webhook (`X-Vapi-Secret`).
    pub webhook_secret: Secret,
    /// Our public base URL, no trailing slash: webhooks are `{public_url}/webhooks/vapi`.
    pub public_url: String,
    pub max_call_seconds: u32,
    pub request_timeout: Duration,
}

pub struct VapiClient {
    http: reqwest::Client,
    settings: Settings,
}

/// The parts of Vapi's `Call` object we read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallObject {
    id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    ended_reason: Option<String>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    ended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    customer: Option<Customer>,
}

#[derive(Deserialize)]
struct Customer {
    #[serde(default)]
    number: Option<String>,
}

#[derive(Deserialize)]
struct PhoneNumber {
    id: String,
    /// Absent for SIP-only numbers, which cannot be caller IDs here.
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl CallObject {
    /// Our status for Vapi's; None for one we do not know (`not-found`,
    /// `deletion-failed`, anything Vapi adds later) or none at all.
    fn status(&self) -> Option<Status> {
        match self.status.as_deref() {
            Some("ended") => Some(ended(self.ended_reason.as_deref().unwrap_or(""), self.started_at.is_some()).status),
            Some(other) => map_progress(other),
            None => None,
        }
    }

    /// None while Vapi reports a status we do not know (stored nowhere, asked again later).
    fn snapshot(self) -> Option<CallSnapshot> {
        let status = self.status()?;
        Some(self.snapshot_as(status))
    }

    fn snapshot_as(self, status: Status) -> CallSnapshot {
        let duration_seconds = match (self.started_at, self.ended_at) {
            (Some(s), Some(e)) => Some((e - s).num_seconds().max(0)),
            _ => None,
        };
        CallSnapshot { call_id: self.id, status, answered_by: None, duration_seconds, created_at: self.created_at }
    }
}

/// The listed calls to `to`, oldest first. A call whose status we cannot read is
/// still a call: it is kept as `in_progress`, so the reconciler adopts it and waits
/// for its real outcome (its webhooks, or a later fetch by id) instead of reading
/// "no call found" and dialling the person again.
fn calls_to(calls: Vec<CallObject>, to: &str) -> Vec<CallSnapshot> {
    let mut found: Vec<CallSnapshot> = calls
        .into_iter()
        .filter(|c| c.customer.as_ref().and_then(|c| c.number.as_deref()) == Some(to))
        .map(|c| match c.status() {
            Some(status) => c.snapshot_as(status),
            None => {
                tracing::warn!(call_id = %c.id, status = ?c.status, "Vapi listed a call with a status not understood");
                c.snapshot_as(Status::InProgress)
            }
        })
        .collect();
    found.sort_by_key(|c| c.created_at);
    found
}

impl VapiClient {
    pub fn new(settings: Settings) -> anyhow::Result<VapiClient> {
        let http = crate::provider::http_client(settings.request_timeout)?;
        let settings = Settings {
            api_base: settings.api_base.trim_end_matches('/').to_string(),
            public_url: settings.public_url.trim_end_matches('/').to_string(),
            ..settings
        };
        Ok(VapiClient { http, settings })
    }

    /// The `POST /call` body. The server URL is set per call (an assistant override)
    /// so each webhook carries `?attempt_id=N` and our secret header, whatever the
    /// assistant's own server settings are; only the messages we act on are asked
    /// for (the two status messages, and `tool-calls` for the `opt_out` function). Errors: no `phoneNumberId` for the caller number → `Config`.
    pub fn create_body(&self, req: &CallRequest) -> Result<Value, ProviderError> {
        let Some(phone_number_id) = req.from_provider_id.as_deref().filter(|id| !id.is_empty()) else {
            return Err(ProviderError::Config {
                code: 0,
                message: format!(
                    "caller number {} has no Vapi phoneNumberId: import the account's numbers from Vapi \
                     (Numbers page → Import from provider, or `dialer numbers provider-import --all`)",
                    req.from
                ),
            });
        };
        let s = &self.settings;
        Ok(json!({
            "assistantId": s.assistant_id,
            "phoneNumberId": phone_number_id,
            "customer": {"number": req.to},
            // Vapi caps `name` at 40 characters; "attempt " + an i64 fits.
            "name": format!("attempt {}", req.attempt_id),
            "assistantOverrides": {
                "server": {
                    "url": format!("{}/webhooks/vapi?attempt_id={}", s.public_url, req.attempt_id),
                    "headers": {"X-Vapi-Secret": s.webhook_secret.expose()},
                },
                "serverMessages": ["status-update", "end-of-call-report", "tool-calls"],
                "maxDurationSeconds": s.max_call_seconds,
                "metadata": {"attempt_id": req.attempt_id},
            },
        }))
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.settings.api_base)).bearer_auth(self.settings.api_key.expose())
    }

    async fn error_from(response: reqwest::Response) -> ProviderError {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        // NestJS-style: `message` is a string or a list of strings.
        let message = match &body["message"] {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "),
            _ => body["error"].as_str().unwrap_or_default().to_string(),
        };
        classify(status, &message)
    }

    async fn read<T: serde::de::DeserializeOwned>(
        sent: reqwest::Result<reqwest::Response>,
        what: &str,
    ) -> Result<T, ProviderError> {
        let resp = sent.map_err(|e| ProviderError::Retry(format!("{what}: {e}")))?;
        if !resp.status().is_success() {
            return Err(Self::error_from(resp).await);
        }
        resp.json().await.map_err(|e| ProviderError::Retry(format!("{what}: unreadable body: {e}")))
    }
}

#[async_trait]
impl Provider for VapiClient {
    fn name(&self) -> &'static str {
        "vapi"
    }

    /// `POST /call`; the reply's `id` is the call id. A reply with
    /// `subscriptionLimits.concurrencyBlocked` and no id → `Throttle`; with an id the
    /// call exists (Vapi holds it for a free slot or ends it with the concurrency
    /// reason), so it is kept and followed like any other rather than dialled again.
    async fn create_call(&self, req: &CallRequest) -> Result<String, ProviderError> {
        let body = self.create_body(req)?;
        let url = format!("{}/call", self.settings.api_base);
        let sent = self.http.post(&url).bearer_auth(self.settings.api_key.expose()).json(&body).send().await;
        match sent {
            Ok(resp) if resp.status().is_success() => match resp.json::<Value>().await {
                Ok(v) => {
                    let blocked = v["subscriptionLimits"]["concurrencyBlocked"].as_bool() == Some(true);
                    match (v["id"].as_str().filter(|id| !id.is_empty()), blocked) {
                        (Some(id), blocked) => {
                            if blocked {
                                tracing::warn!(call_id = id, "Vapi queued a call behind its concurrency limit");
                            }
                            Ok(id.to_string())
                        }
                        (None, true) => {
                            Err(ProviderError::Throttle("Vapi concurrency limit reached (concurrencyBlocked)".into()))
                        }
                        (None, false) => Err(ProviderError::Unknown("Vapi accepted the call but sent no id".into())),
                    }
                }
                // Vapi answered 2xx: the call exists, but we cannot read its id.
                Err(e) => Err(ProviderError::Unknown(format!("unreadable create-call response: {e}"))),
            },
            Ok(resp) => Err(Self::error_from(resp).await),
            Err(e) => Err(ProviderError::from_send(&e, &self.settings.api_base)),
        }
    }

    /// `GET /call/{id}`; 404 → None.
    async fn fetch_call(&self, call_id: &str) -> Result<Option<CallSnapshot>, ProviderError> {
        let resp = self
            .get(&format!("/call/{call_id}"))
            .send()
            .await
            .map_err(|e| ProviderError::Retry(format!("fetch call: {e}")))?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let call: CallObject = Self::read(Ok(resp), "fetch call").await?;
        call.snapshot().map(Some).ok_or_else(|| ProviderError::Retry("fetch call: status not understood".into()))
    }

    /// `GET /call?phoneNumberId=…&createdAtGt=…&limit=100`. Vapi's list filters by
    /// phone number id and creation time but not by the customer's number, so the
    /// `to` filter is applied here. A listed call whose status we cannot read is
    /// returned as `in_progress` (never dropped: see [`calls_to`]). The caller number's id comes from
    /// `GET /phone-number`; an unknown `from` lists without that filter.
    async fn find_calls(&self, to: &str, from: &str, since: DateTime<Utc>) -> Result<Vec<CallSnapshot>, ProviderError> {
        let phone_number_id = self.list_numbers().await?.into_iter().find(|n| n.number == from).map(|n| n.provider_id);
        // A few seconds' margin for clock skew between us and Vapi.
        let after = (since - chrono::Duration::seconds(5)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut query = vec![("createdAtGt", after), ("limit", "100".to_string())];
        if let Some(id) = phone_number_id {
            query.push(("phoneNumberId", id));
        }
        let calls: Vec<CallObject> = Self::read(self.get("/call").query(&query).send().await, "list calls").await?;
        Ok(calls_to(calls, to))
    }

    /// `GET /phone-number`: the account's numbers with their ids (SIP-only entries,
    /// which have no E.164 number, are left out).
    async fn list_numbers(&self) -> Result<Vec<OwnedNumber>, ProviderError> {
        let numbers: Vec<PhoneNumber> =
            Self::read(self.get("/phone-number").query(&[("limit", "1000")]).send().await, "list phone numbers")
                .await?;
        Ok(numbers
            .into_iter()
            .filter_map(|n| Some(OwnedNumber { number: n.number?, provider_id: n.id, label: n.name }))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::flow::AmdMode;

    fn client() -> VapiClient {
        VapiClient::new(Settings {
            api_base: "http://127.0.0.1:1/".into(),
            api_key: Secret::new("k"),
            assistant_id: "asst-1".into(),
            webhook_secret: Secret::new("hook-secret"),
            public_url: "https://d.example.com/".into(),
            max_call_seconds: 600,
            request_timeout: Duration::from_secs(15),
        })
        .unwrap()
    }

    fn request(from_provider_id: Option<&str>) -> CallRequest {
        CallRequest {
            attempt_id: 42,
            to: "+14155550123".into(),
            from: "+12025550101".into(),
            from_provider_id: from_provider_id.map(String::from),
            amd: AmdMode::default(),
        }
    }

    #[test]
    fn create_body_uses_the_phone_number_id_and_our_server() {
        let body = client().create_body(&request(Some("pn-1"))).unwrap();
        assert_eq!(body["assistantId"], "asst-1");
        assert_eq!(body["phoneNumberId"], "pn-1");
        assert_eq!(body["customer"]["number"], "+14155550123");
        assert_eq!(body["name"], "attempt 42");
        let o = &body["assistantOverrides"];
        assert_eq!(o["server"]["url"], "https://d.example.com/webhooks/vapi?attempt_id=42");
        assert_eq!(o["server"]["headers"]["X-Vapi-Secret"], "hook-secret");
        assert_eq!(o["maxDurationSeconds"], 600);
        assert_eq!(o["serverMessages"], json!(["status-update", "end-of-call-report", "tool-calls"]));
        assert_eq!(o["metadata"]["attempt_id"], 42);
        assert!(format!("attempt {}", i64::MAX).len() <= 40);
    }

    #[test]
    fn no_phone_number_id_is_a_configuration_problem_naming_the_number() {
        for id in [None, Some("")] {
            match client().create_body(&request(id)) {
                Err(ProviderError::Config { message, .. }) => {
                    assert!(message.contains("+12025550101") && message.contains("import"), "{message}")
                }
                other => panic!("expected Config, got {other:?}"),
            }
        }
    }

    #[test]
    fn snapshots_map_ended_reasons_and_durations() {
        let call: CallObject = serde_json::from_value(json!({
            "id": "c1", "status": "ended", "endedReason": "customer-busy",
            "createdAt": "2026-11-21T10:00:00.000Z",
        }))
        .unwrap();
        let snap = call.snapshot().unwrap();
        assert_eq!(snap.status, Status::Busy);
        assert_eq!(snap.duration_seconds, None);
        let call: CallObject = serde_json::from_value(json!({
            "id": "c2", "status": "ended", "endedReason": "customer-ended-call",
            "startedAt": "2026-11-21T10:00:05Z", "endedAt": "2026-11-21T10:01:05Z",
        }))
        .unwrap();
        assert_eq!(call.snapshot().unwrap().duration_seconds, Some(60));
        let call: CallObject = serde_json::from_value(json!({"id": "c3", "status": "ringing"})).unwrap();
        assert_eq!(call.snapshot().unwrap().status, Status::Ringing);
    }

    #[test]
    fn a_listed_call_with_a_status_not_understood_is_found_and_waited_for() {
        let calls: Vec<CallObject> = serde_json::from_value(json!([
            {"id": "new", "status": "some-new-status", "customer": {"number": "+14155550123"},
             "createdAt": "2026-11-21T10:00:02Z"},
            {"id": "none", "customer": {"number": "+14155550123"}, "createdAt": "2026-11-21T10:00:03Z"},
            {"id": "busy", "status": "ended", "endedReason": "customer-busy",
             "customer": {"number": "+14155550123"}, "createdAt": "2026-11-21T10:00:01Z"},
            {"id": "other", "status": "weird", "customer": {"number": "+14155550999"}},
        ]))
        .unwrap();
        let found: Vec<(String, Status)> =
            calls_to(calls, "+14155550123").into_iter().map(|c| (c.call_id, c.status)).collect();
        // Not dropped (that would read as "no call" and dial the person again): found,
        // in progress, so the reconciler adopts it and waits for its outcome.
        assert_eq!(
            found,
            [("busy".into(), Status::Busy), ("new".into(), Status::InProgress), ("none".into(), Status::InProgress)]
        );
    }
}
