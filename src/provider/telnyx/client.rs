//! Telnyx Call Control v2 REST client (providers.md §2.1): Dial, call commands,
//! Retrieve a call, the connection's active calls, phone numbers. JSON over HTTPS
//! with `Authorization: Bearer <API key>`.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Secret;
use crate::domain::flow::AmdMode;
use crate::domain::status::Status;
use crate::provider::telnyx::events::{ClientState, Step, command_id, dial_command_id};
use crate::provider::telnyx::flow::Command;
use crate::provider::telnyx::{ErrorBody, classify};
use crate::provider::{CallRequest, CallSnapshot, OwnedNumber, Provider, ProviderError};

pub struct Settings {
    /// `https://api.telnyx.com`, no `/v2`.
    pub api_base: String,
    pub api_key: Secret,
    /// Call Control Application id.
    pub connection_id: String,
    /// Our public base URL, no trailing slash: webhooks are `{public_url}/webhooks/telnyx`.
    pub public_url: String,
    pub ring_timeout_seconds: u32,
    pub max_call_seconds: u32,
    pub request_timeout: Duration,
}

pub struct TelnyxClient {
    http: reqwest::Client,
    settings: Settings,
}

/// `answering_machine_detection` for a campaign's AMD mode: `off` → `disabled`;
/// `enable` → `detect` (a verdict only: a machine is hung up on, as Twilio's
/// `machine_start`); `detect_message_end` and `async` → `detect_beep` (the verdict,
/// then `call.machine.greeting.ended` on the beep, when the voicemail is left).
/// Telnyx's verdict always arrives by webhook, so `async` is the same as
/// `detect_message_end`: the message waits for the verdict.
pub fn amd_param(mode: AmdMode) -> &'static str {
    match mode {
        AmdMode::Off => "disabled",
        AmdMode::Enable => "detect",
        AmdMode::DetectMessageEnd | AmdMode::Async => "detect_beep",
    }
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Deserialize)]
struct CallData {
    call_control_id: String,
    #[serde(default)]
    is_alive: Option<bool>,
    #[serde(default)]
    call_duration: Option<i64>,
    #[serde(default)]
    client_state: Option<String>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    total_pages: Option<u32>,
}

#[derive(Deserialize)]
struct Page<T> {
    data: Vec<T>,
    #[serde(default)]
    meta: Meta,
}

#[derive(Deserialize)]
struct NumberData {
    id: String,
    phone_number: String,
    #[serde(default)]
    connection_name: Option<String>,
}

/// At most this many pages of 250 are read from a list (10,000 entries).
const MAX_PAGES: u32 = 40;

impl TelnyxClient {
    pub fn new(settings: Settings) -> anyhow::Result<TelnyxClient> {
        let http = crate::provider::http_client(settings.request_timeout)?;
        let settings = Settings {
            api_base: settings.api_base.trim_end_matches('/').to_string(),
            public_url: settings.public_url.trim_end_matches('/').to_string(),
            ..settings
        };
        Ok(TelnyxClient { http, settings })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.settings.api_base)
    }

    /// The Dial body. `timeout_secs` within Telnyx's 5–600, `time_limit_secs` within 30–14400.
    pub fn dial_body(&self, req: &CallRequest) -> Value {
        let s = &self.settings;
        let state = ClientState {
            attempt_id: req.attempt_id,
            step: Step::Dial,
            to: Some(req.to.clone()),
            from: Some(req.from.clone()),
        };
        json!({
            "connection_id": s.connection_id,
            "to": req.to,
            "from": req.from,
            "webhook_url": format!("{}/webhooks/telnyx", s.public_url),
            "webhook_url_method": "POST",
            "client_state": state.encode(),
            "command_id": dial_command_id(req.attempt_id),
            "timeout_secs": s.ring_timeout_seconds.clamp(5, 600),
            "time_limit_secs": s.max_call_seconds.clamp(30, 14_400),
            "answering_machine_detection": amd_param(req.amd),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, reqwest::Error> {
        request.bearer_auth(self.settings.api_key.expose()).header("Accept", "application/json").send().await
    }

    async fn error_from(resp: reqwest::Response) -> ProviderError {
        let status = resp.status().as_u16();
        let body: ErrorBody = resp.json().await.unwrap_or_default();
        classify(status, &body.errors)
    }

    /// Sends one call command to `call_control_id`: `POST /v2/calls/{id}/actions/{action}`
    /// with the command's body, its `client_state` and a `command_id` derived from the
    /// attempt, the step and the action. Errors as [`classify`]; a call that already
    /// ended answers 422 (`Rejected`).
    pub async fn command(&self, call_control_id: &str, command: &Command) -> Result<(), ProviderError> {
        let mut body = command.body.clone();
        if let Some(b) = body.as_object_mut() {
            b.insert("client_state".into(), command.state.encode().into());
            b.insert(
                "command_id".into(),
                command_id(command.state.attempt_id, command.state.step, command.action).into(),
            );
        }
        let url = self.url(&format!("calls/{call_control_id}/actions/{}", command.action));
        match self.send(self.http.post(url).json(&body)).await {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(Self::error_from(resp).await),
            Err(e) if e.is_connect() => Err(ProviderError::Retry(format!("{}: {e}", command.action))),
            Err(e) => Err(ProviderError::Unknown(format!("{}: {e}", command.action))),
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: String, what: &str) -> Result<Option<T>, ProviderError> {
        let resp = self.send(self.http.get(url)).await.map_err(|e| ProviderError::Retry(format!("{what}: {e}")))?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(Self::error_from(resp).await);
        }
        resp.json().await.map(Some).map_err(|e| ProviderError::Retry(format!("{what}: unreadable body: {e}")))
    }
}

#[async_trait]
impl Provider for TelnyxClient {
    fn name(&self) -> &'static str {
        "telnyx"
    }

    /// `POST /v2/calls`; returns `data.call_control_id`.
    async fn create_call(&self, req: &CallRequest) -> Result<String, ProviderError> {
        let sent = self.send(self.http.post(self.url("calls")).json(&self.dial_body(req))).await;
        match sent {
            Ok(resp) if resp.status().is_success() => match resp.json::<Data<CallData>>().await {
                Ok(d) => Ok(d.data.call_control_id),
                Err(e) => Err(ProviderError::Unknown(format!("unreadable dial response: {e}"))),
            },
            Ok(resp) => Err(Self::error_from(resp).await),
            Err(e) => Err(ProviderError::from_send(&e, &self.settings.api_base)),
        }
    }

    /// `GET /v2/calls/{call_control_id}`. Telnyx reports only whether the call is
    /// alive, not how it ended: an alive call is `in_progress` (the reconciler waits
    /// for its webhooks); an ended or unknown call is None, so the reconciler records
    /// `unknown` (never retried) rather than guess an outcome whose webhook was lost.
    async fn fetch_call(&self, call_id: &str) -> Result<Option<CallSnapshot>, ProviderError> {
        let found: Option<Data<CallData>> = self.get(self.url(&format!("calls/{call_id}")), "retrieve call").await?;
        Ok(found.filter(|d| d.data.is_alive == Some(true)).map(|d| CallSnapshot {
            call_id: d.data.call_control_id,
            status: Status::InProgress,
            answered_by: None,
            duration_seconds: d.data.call_duration,
            created_at: None,
        }))
    }

    /// Call Control lists only live calls (see [`Self::find_calls`]).
    fn lists_ended_calls(&self) -> bool {
        false
    }

    /// Call Control cannot list calls by number. The connection's active calls
    /// (`GET /v2/connections/{connection_id}/active_calls`) carry their client state,
    /// and ours names the attempt's To and From, so a live call created by a request
    /// that got no reply is found and adopted. A call that already ended is not
    /// listed: the attempt is then closed as `unknown` (never redialled, see
    /// `lists_ended_calls`), which is the safe side. Normally the call's own webhooks (which carry the attempt id)
    /// have recorded its id long before the reconciler asks.
    async fn find_calls(
        &self,
        to: &str,
        from: &str,
        _since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<CallSnapshot>, ProviderError> {
        let mut found = Vec::new();
        let path = format!("connections/{}/active_calls", self.settings.connection_id);
        for page in 1..=MAX_PAGES {
            let url = format!("{}?page[number]={page}&page[size]=250", self.url(&path));
            let Some(list) = self.get::<Page<CallData>>(url, "active calls").await? else { break };
            let pages = list.meta.total_pages.unwrap_or(1);
            for call in list.data {
                let state = call.client_state.as_deref().and_then(ClientState::decode);
                if state.is_some_and(|s| s.to.as_deref() == Some(to) && s.from.as_deref() == Some(from)) {
                    found.push(CallSnapshot {
                        call_id: call.call_control_id,
                        status: Status::InProgress,
                        answered_by: None,
                        duration_seconds: call.call_duration,
                        created_at: None,
                    });
                }
            }
            if page >= pages {
                break;
            }
        }
        Ok(found)
    }

    /// `GET /v2/phone_numbers`, every page (`meta.total_pages`).
    async fn list_numbers(&self) -> Result<Vec<OwnedNumber>, ProviderError> {
        let mut numbers = Vec::new();
        for page in 1..=MAX_PAGES {
            let url = format!("{}?page[number]={page}&page[size]=250", self.url("phone_numbers"));
            let Some(list) = self.get::<Page<NumberData>>(url, "phone numbers").await? else { break };
            let pages = list.meta.total_pages.unwrap_or(1);
            numbers.extend(list.data.into_iter().map(|n| OwnedNumber {
                number: n.phone_number,
                provider_id: n.id,
                label: n.connection_name.filter(|l| !l.is_empty()),
            }));
            if page >= pages {
                break;
            }
        }
        Ok(numbers)
    }

    fn telnyx(&self) -> Option<&TelnyxClient> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_body_carries_the_attempt() {
        let client = TelnyxClient::new(Settings {
            api_base: "http://127.0.0.1:1/".into(),
            api_key: Secret::new("KEY"),
            connection_id: "conn-1".into(),
            public_url: "https://d.example.com/".into(),
            ring_timeout_seconds: 25,
            max_call_seconds: 600,
            request_timeout: Duration::from_secs(15),
        })
        .unwrap();
        let req = CallRequest {
            attempt_id: 7,
            to: "+14155550101".into(),
            from: "+14155550100".into(),
            from_provider_id: None,
            amd: AmdMode::Async,
        };
        let body = client.dial_body(&req);
        assert_eq!(body["connection_id"], "conn-1");
        assert_eq!(body["webhook_url"], "https://d.example.com/webhooks/telnyx");
        assert_eq!(body["webhook_url_method"], "POST");
        assert_eq!(body["command_id"], "dial-attempt-7");
        assert_eq!((body["timeout_secs"].as_u64(), body["time_limit_secs"].as_u64()), (Some(25), Some(600)));
        assert_eq!(body["answering_machine_detection"], "detect_beep");
        let state = ClientState::decode(body["client_state"].as_str().unwrap()).unwrap();
        assert_eq!((state.attempt_id, state.step, state.to.as_deref()), (7, Step::Dial, Some("+14155550101")));
        assert_eq!(client.url("calls"), "http://127.0.0.1:1/v2/calls");
        let modes: Vec<_> = AmdMode::ALL.into_iter().map(amd_param).collect();
        assert_eq!(modes, ["disabled", "detect", "detect_beep", "detect_beep"]);
    }
}
