//! Twilio REST client: Create Call and Fetch Call over HTTPS with basic auth.
//! Source: twilio-oai `twilio_api_v2010.yaml` (CreateCall, FetchCall); providers.md §1.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::config::Secret;
use crate::domain::flow::AmdMode;
use crate::domain::status::Status;
use crate::provider::twilio::{classify, map_status};
use crate::provider::{CallRequest, CallSnapshot, OwnedNumber, Provider, ProviderError};

/// Pages of IncomingPhoneNumbers read at most (1,000 numbers each).
const MAX_NUMBER_PAGES: usize = 100;

/// Pages of Calls (To + From) read at most by `find_calls`, 50 calls each.
const MAX_CALL_PAGES: usize = 20;
const CALL_PAGE_SIZE: &str = "50";

pub struct TwilioClient {
    http: reqwest::Client,
    api_base: String,
    account_sid: String,
    auth_token: Secret,
    /// Our public base URL, no trailing slash: webhooks are `{public_url}/webhooks/twilio/...`.
    public_url: String,
    ring_timeout_seconds: u32,
    max_call_seconds: u32,
}

pub struct Settings {
    pub api_base: String,
    pub account_sid: String,
    pub auth_token: Secret,
    pub public_url: String,
    pub ring_timeout_seconds: u32,
    pub max_call_seconds: u32,
    /// Longest wait for one REST reply; past it a create-call's outcome is unknown.
    pub request_timeout: Duration,
}

#[derive(Deserialize)]
struct CallResource {
    sid: String,
    status: String,
    #[serde(default)]
    answered_by: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    /// RFC 2822.
    #[serde(default)]
    date_created: Option<String>,
}

/// One page of Calls, newest first.
#[derive(Deserialize)]
struct CallList {
    #[serde(default)]
    calls: Vec<CallResource>,
    /// Relative to the API base; null on the last page.
    #[serde(default)]
    next_page_uri: Option<String>,
}

impl CallResource {
    fn snapshot(self) -> Result<CallSnapshot, ProviderError> {
        let status = map_status(&self.status, self.answered_by.as_deref())
            .ok_or_else(|| ProviderError::Retry(format!("unknown call status {:?}", self.status)))?;
        Ok(self.snapshot_as(status))
    }

    /// A listed call, whatever its status: one whose status we cannot read is still
    /// a call that exists, so it is reported `in_progress` (the reconciler adopts it
    /// and waits for its webhooks or a later fetch) rather than dropped, which would
    /// read as "no call" and redial the lead.
    fn listed(self) -> CallSnapshot {
        match map_status(&self.status, self.answered_by.as_deref()) {
            Some(status) => self.snapshot_as(status),
            None => {
                let (call_id, status) = (&self.sid, &self.status);
                tracing::warn!(%call_id, %status, "a listed call's status is unknown: taken as in progress");
                self.snapshot_as(Status::InProgress)
            }
        }
    }

    fn created_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.date_created
            .as_deref()
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&chrono::Utc))
    }

    fn snapshot_as(self, status: Status) -> CallSnapshot {
        CallSnapshot {
            created_at: self.created_at(),
            call_id: self.sid,
            status,
            answered_by: self.answered_by.filter(|a| !a.is_empty()),
            duration_seconds: self.duration.and_then(|d| d.parse().ok()),
        }
    }
}

/// One page of IncomingPhoneNumbers.
#[derive(Deserialize)]
struct NumberPage {
    #[serde(default)]
    incoming_phone_numbers: Vec<IncomingNumber>,
    /// Relative to the API base ("/2010-04-01/Accounts/…&Page=1&PageToken=…"); null on the last page.
    #[serde(default)]
    next_page_uri: Option<String>,
}

#[derive(Deserialize)]
struct IncomingNumber {
    /// E.164.
    phone_number: String,
    /// `PN…`.
    sid: String,
    #[serde(default)]
    friendly_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

impl TwilioClient {
    pub fn new(settings: Settings) -> anyhow::Result<TwilioClient> {
        let http = crate::provider::http_client(settings.request_timeout)?;
        Ok(TwilioClient {
            http,
            api_base: settings.api_base.trim_end_matches('/').to_string(),
            account_sid: settings.account_sid,
            auth_token: settings.auth_token,
            public_url: settings.public_url.trim_end_matches('/').to_string(),
            ring_timeout_seconds: settings.ring_timeout_seconds,
            max_call_seconds: settings.max_call_seconds,
        })
    }

    fn calls_url(&self) -> String {
        format!("{}/2010-04-01/Accounts/{}/Calls.json", self.api_base, self.account_sid)
    }

    /// The form for Create Call. A Vec of pairs, so `StatusCallbackEvent` repeats as
    /// Twilio expects (a map would keep one value).
    fn create_form(&self, req: &CallRequest) -> Vec<(&'static str, String)> {
        let hook = |kind: &str| format!("{}/webhooks/twilio/{kind}?attempt_id={}", self.public_url, req.attempt_id);
        let mut form = vec![
            ("To", req.to.clone()),
            ("From", req.from.clone()),
            ("Url", hook("voice")),
            ("Method", "POST".into()),
            ("StatusCallback", hook("status")),
            ("StatusCallbackMethod", "POST".into()),
        ];
        for event in ["initiated", "ringing", "answered", "completed"] {
            form.push(("StatusCallbackEvent", event.into()));
        }
        form.push(("Timeout", self.ring_timeout_seconds.to_string()));
        form.push(("TimeLimit", self.max_call_seconds.to_string()));
        match req.amd {
            AmdMode::Off => {}
            AmdMode::Enable => form.push(("MachineDetection", "Enable".into())),
            AmdMode::DetectMessageEnd => form.push(("MachineDetection", "DetectMessageEnd".into())),
            AmdMode::Async => {
                form.push(("MachineDetection", "DetectMessageEnd".into()));
                form.push(("AsyncAmd", "true".into()));
                form.push(("AsyncAmdStatusCallback", hook("amd")));
                form.push(("AsyncAmdStatusCallbackMethod", "POST".into()));
            }
        }
        form
    }

    fn call_url(&self, call_id: &str) -> String {
        format!("{}/2010-04-01/Accounts/{}/Calls/{call_id}.json", self.api_base, self.account_sid)
    }

    /// Modify Call (`POST …/Calls/{sid}.json`) with `form`. A live call that already
    /// ended answers 400 (21220): reported as `Rejected`, nothing to undo.
    async fn modify_call(&self, call_id: &str, form: &[(&str, &str)]) -> Result<(), ProviderError> {
        let resp = self
            .http
            .post(self.call_url(call_id))
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .header("Accept", "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| ProviderError::Unknown(format!("modify call: {e}")))?;
        if resp.status().is_success() { Ok(()) } else { Err(Self::error_from(resp).await) }
    }

    async fn error_from(response: reqwest::Response) -> ProviderError {
        let status = response.status().as_u16();
        let body: ErrorBody = response.json().await.unwrap_or_default();
        let message = body.message.or(body.title).unwrap_or_default();
        classify(status, body.code, &message)
    }
}

#[async_trait]
impl Provider for TwilioClient {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn create_call(&self, req: &CallRequest) -> Result<String, ProviderError> {
        let sent = self
            .http
            .post(self.calls_url())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .header("Accept", "application/json")
            .form(&self.create_form(req))
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => match resp.json::<CallResource>().await {
                Ok(call) => Ok(call.sid),
                // Twilio answered 2xx: the call exists, but we cannot read its id.
                Err(e) => Err(ProviderError::Unknown(format!("unreadable create-call response: {e}"))),
            },
            Ok(resp) => Err(Self::error_from(resp).await),
            Err(e) => Err(ProviderError::from_send(&e, &self.api_base)),
        }
    }

    async fn fetch_call(&self, call_id: &str) -> Result<Option<CallSnapshot>, ProviderError> {
        let resp = self
            .http
            .get(self.call_url(call_id))
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .send()
            .await
            .map_err(|e| ProviderError::Retry(format!("fetch call: {e}")))?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(Self::error_from(resp).await);
        }
        let call: CallResource =
            resp.json().await.map_err(|e| ProviderError::Retry(format!("fetch call: unreadable body: {e}")))?;
        Ok(Some(call.snapshot()?))
    }

    /// Twilio's Read multiple Call resources filtered by `To` and `From` only, then by
    /// creation time here. No `StartTime` filter: Twilio applies it to when a call
    /// *started*, and a call still queued (behind the account's calls-per-second
    /// limit) has no start time, so it would be missed and the lead dialled twice.
    /// Twilio lists newest first: pages are followed (`next_page_uri`, at most
    /// `MAX_CALL_PAGES`) until a call created before `since` shows up. A call whose
    /// creation time cannot be read is kept, and so is one whose status cannot.
    async fn find_calls(
        &self,
        to: &str,
        from: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<CallSnapshot>, ProviderError> {
        let mut calls: Vec<CallSnapshot> = Vec::new();
        let mut request =
            self.http.get(self.calls_url()).query(&[("To", to), ("From", from), ("PageSize", CALL_PAGE_SIZE)]);
        for _ in 0..MAX_CALL_PAGES {
            let resp = request
                .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
                .send()
                .await
                .map_err(|e| ProviderError::Retry(format!("list calls: {e}")))?;
            if !resp.status().is_success() {
                return Err(Self::error_from(resp).await);
            }
            let page: CallList =
                resp.json().await.map_err(|e| ProviderError::Retry(format!("list calls: unreadable body: {e}")))?;
            let mut reached_older = false;
            for call in page.calls {
                match call.created_at() {
                    Some(t) if t < since => reached_older = true,
                    _ => calls.push(call.listed()),
                }
            }
            match page.next_page_uri {
                Some(next) if !next.is_empty() && !reached_older => {
                    request = self.http.get(format!("{}{next}", self.api_base));
                }
                _ => {
                    calls.sort_by_key(|c| c.created_at);
                    return Ok(calls);
                }
            }
        }
        // Every page so far was newer than `since` and there are more: what is left
        // unread may hold the call, so "none found" cannot be said.
        Err(ProviderError::Retry(format!(
            "list calls: more than {MAX_CALL_PAGES} pages of calls to {to} from {from} since {since}"
        )))
    }

    /// IncomingPhoneNumbers, every page (`next_page_uri`), in the order Twilio lists them.
    async fn list_numbers(&self) -> Result<Vec<OwnedNumber>, ProviderError> {
        let mut out = Vec::new();
        let mut url = format!(
            "{}/2010-04-01/Accounts/{}/IncomingPhoneNumbers.json?PageSize=1000",
            self.api_base, self.account_sid
        );
        // A bound on pages, so a provider that keeps returning a next page cannot loop us.
        for _ in 0..MAX_NUMBER_PAGES {
            let resp = self
                .http
                .get(&url)
                .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
                .send()
                .await
                .map_err(|e| ProviderError::Retry(format!("list numbers: {e}")))?;
            if !resp.status().is_success() {
                return Err(Self::error_from(resp).await);
            }
            let page: NumberPage =
                resp.json().await.map_err(|e| ProviderError::Retry(format!("list numbers: unreadable body: {e}")))?;
            out.extend(page.incoming_phone_numbers.into_iter().map(|n| OwnedNumber {
                number: n.phone_number,
                provider_id: n.sid,
                label: n.friendly_name.filter(|l| !l.is_empty()),
            }));
            match page.next_page_uri {
                Some(next) if !next.is_empty() => url = format!("{}{next}", self.api_base),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    async fn redirect_call(&self, call_id: &str, url: &str) -> Result<(), ProviderError> {
        self.modify_call(call_id, &[("Url", url), ("Method", "POST")]).await
    }

    async fn hang_up(&self, call_id: &str) -> Result<(), ProviderError> {
        self.modify_call(call_id, &[("Status", "completed")]).await
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
