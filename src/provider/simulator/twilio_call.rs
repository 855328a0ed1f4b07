//! One simulated Twilio call's life: queued → initiated → ringing → the callee's
//! script (`script::callee`): busy, no answer, failed, or answered, AMD as requested,
//! then the dialer's TwiML run by `twiml_run` until it hangs up. Status callbacks go
//! through an `Outbox` (faults injected); TwiML fetches are direct and unfaulted,
//! since their reply drives the call. Every call is a ledger entry (api `twilio`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::config::Callee;
use crate::provider::simulator::ledger::Entry;
use crate::provider::simulator::outbox::{Hook, Outbox, deliver_with_retries};
use crate::provider::simulator::script::{self, seconds_between};
use crate::provider::simulator::twiml::{Method, Wait};
use crate::provider::simulator::twiml_run::{self, Line, Modify};
use crate::provider::simulator::{ACCOUNT_SID, Sim};
use crate::provider::twilio::signature;

/// Live calls: call sid → where a Modify Call is delivered. Removed when the call ends.
pub type Live = Arc<Mutex<HashMap<String, watch::Sender<Option<Modify>>>>>;

/// Signs the invalid-signature fault's copies: not the account's token.
const FORGED_TOKEN: &str = "not-the-simulator-auth-token";
/// How long the verb during which an async AMD verdict is reported lasts past it.
const AMD_GRACE: Duration = Duration::from_secs(2);
/// What a call costs per started minute, USD (Twilio reports prices negative).
const PRICE_PER_MINUTE: f64 = 0.013;

/// `MachineDetection` / `AsyncAmd` of a Create Call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amd {
    Off,
    Enable,
    DetectMessageEnd,
    /// `AsyncAmd=true`: the verdict goes to `AsyncAmdStatusCallback` while TwiML runs.
    Async,
}

pub struct CreateRequest {
    pub to: String,
    pub from: String,
    url: String,
    method: Method,
    status_callback: Option<String>,
    events: Vec<String>,
    amd: Amd,
    amd_callback: Option<String>,
}

impl CreateRequest {
    /// Validates like Twilio: `To` and `From` required, one of `Url`/`Twiml` (we need
    /// Url), `To` a phone number. Errors are Twilio's (code, message).
    pub fn from_form(form: &[(String, String)]) -> Result<CreateRequest, (i64, String)> {
        let get = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let to = get("To").ok_or((21201, "No 'To' number is specified".to_string()))?;
        let from = get("From").ok_or((21213, "No 'From' number is specified".to_string()))?;
        let url = get("Url").ok_or((21205, "Url parameter is required".to_string()))?;
        if !to.starts_with('+') || to.len() < 8 || !to[1..].bytes().all(|b| b.is_ascii_digit()) {
            return Err((21211, format!("The 'To' number {to} is not a valid phone number.")));
        }
        let method = match get("Method").as_deref() {
            Some(m) if m.eq_ignore_ascii_case("GET") => Method::Get,
            _ => Method::Post,
        };
        let amd_callback = get("AsyncAmdStatusCallback");
        let amd = match (get("MachineDetection").as_deref(), get("AsyncAmd").as_deref()) {
            (None, _) => Amd::Off,
            (Some(_), Some("true")) if amd_callback.is_some() => Amd::Async,
            (Some(m), _) if m.eq_ignore_ascii_case("DetectMessageEnd") => Amd::DetectMessageEnd,
            (Some(_), _) => Amd::Enable,
        };
        Ok(CreateRequest {
            to,
            from,
            url,
            method,
            status_callback: get("StatusCallback"),
            events: form.iter().filter(|(k, _)| k == "StatusCallbackEvent").map(|(_, v)| v.clone()).collect(),
            amd,
            amd_callback,
        })
    }
}

/// The AMD verdict for `callee` under `amd` (None: AMD off or nobody answered).
pub fn verdict(callee: Callee, amd: Amd) -> Option<&'static str> {
    let person = matches!(
        callee,
        Callee::Silence | Callee::Press1 | Callee::Press1AgentBusy | Callee::Press1AgentNoAnswer | Callee::Press2
    );
    match (amd, callee) {
        (Amd::Off, _) => None,
        _ if person => Some("human"),
        (_, Callee::Fax) => Some("fax"),
        (Amd::Enable, Callee::Voicemail) => Some("machine_start"),
        (_, Callee::Voicemail) => Some("machine_end_beep"),
        _ => None,
    }
}

/// The Call resource (`api.v2010.account.call`) as Fetch/Read return it.
pub fn resource(e: &Entry) -> Value {
    let price = (e.status == "completed").then(|| price(e.duration_seconds.unwrap_or(0)));
    json!({
        "sid": e.call_id,
        "date_created": e.created_at.to_rfc2822(),
        "account_sid": ACCOUNT_SID,
        "to": e.to,
        "from": e.from,
        "status": e.status,
        "direction": "outbound-api",
        "answered_by": e.answered_by,
        "duration": e.duration_seconds.map(|d| d.to_string()),
        "price": price,
        "price_unit": "USD",
        "api_version": "2010-04-01",
    })
}

/// Twilio's price string for a call of `seconds`: negative, per started minute.
fn price(seconds: u64) -> String {
    format!("{:.5}", -PRICE_PER_MINUTE * seconds.div_ceil(60) as f64)
}

/// Registers the call (ledger + live map), starts its life, returns the 201 body.
pub fn start(sim: &Sim, req: CreateRequest) -> Value {
    let sid = format!("CA{}", uuid::Uuid::new_v4().simple());
    let callee = script::callee(&sim.settings, &req.to);
    let mut entry = Entry::new(sid.clone(), "twilio", &req.to, &req.from, callee);
    entry.client_ref = attempt_ref(&req.url);
    let body = resource(&entry);
    sim.ledger.insert(entry);
    let (tx, rx) = watch::channel(None);
    sim.twilio_live.lock().unwrap_or_else(|e| e.into_inner()).insert(sid.clone(), tx);
    let sim = sim.clone();
    tokio::spawn(async move {
        let mut call = Call { hooks: outbox_task(&sim), sim: sim.clone(), sid, req, callee, rx, seq: 0, amd_due: None };
        tokio::select! {
            _ = call.life() => {}
            _ = sim.shutdown.cancelled() => {}
        }
        sim.twilio_live.lock().unwrap_or_else(|e| e.into_inner()).remove(&call.sid);
    });
    body
}

/// The `attempt_id` in the voice URL's query (what the dialer attached), else the URL.
fn attempt_ref(url: &str) -> Option<String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs.into_iter().find(|(k, _)| k == "attempt_id").map(|(_, v)| v).or_else(|| Some(url.to_string()))
}

/// Delivers one call's status callbacks in order, with faults, off the call's path.
fn outbox_task(sim: &Sim) -> mpsc::UnboundedSender<Hook> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Hook>();
    let mut outbox = Outbox::new(sim);
    let shutdown = sim.shutdown.clone();
    tokio::spawn(async move {
        let run = async {
            while let Some(hook) = rx.recv().await {
                outbox.send(hook).await;
            }
            outbox.flush().await;
        };
        tokio::select! { _ = run => {}, _ = shutdown.cancelled() => {} }
    });
    tx
}

struct Call {
    sim: Sim,
    sid: String,
    req: CreateRequest,
    callee: Callee,
    rx: watch::Receiver<Option<Modify>>,
    hooks: mpsc::UnboundedSender<Hook>,
    seq: u32,
    /// The async AMD verdict still to report (at the first wait once TwiML runs).
    amd_due: Option<&'static str>,
}

impl Call {
    async fn life(&mut self) {
        self.status_hook("initiated", "queued", Vec::new());
        if self.callee == Callee::Failed {
            return self.finish("failed", None);
        }
        self.set(|e| e.status = "ringing".into());
        self.status_hook("ringing", "ringing", Vec::new());
        let (mut url, mut method) = (self.req.url.clone(), self.req.method);
        match self.interruptible(seconds_between(self.sim.settings.ring_seconds)).await {
            Ok(_) => {}
            Err(Modify::Hangup) => return self.finish("canceled", None),
            // Modified before the answer: the new URL is what runs on answer.
            Err(Modify::Redirect { url: u, method: m }) => (url, method) = (u, m),
        }
        match self.callee {
            Callee::Busy => return self.finish("busy", None),
            Callee::NoAnswer => return self.finish("no-answer", None),
            _ => {}
        }
        let answered = Instant::now();
        let verdict = verdict(self.callee, self.req.amd);
        let mut params = vec![];
        if self.req.amd == Amd::Async {
            self.amd_due = verdict;
        } else if let Some(v) = verdict {
            self.set(|e| e.answered_by = Some(v.into()));
            self.sim.ledger.step(&self.sid, format!("AMD: {v}"));
            params.push(("AnsweredBy".to_string(), v.to_string()));
        }
        self.set(|e| e.status = "in-progress".into());
        self.status_hook("answered", "in-progress", params.clone());
        let ended = twiml_run::run(self, self.callee, url, method, params).await;
        tracing::debug!(sid = %self.sid, ?ended, "simulated call's TwiML ended");
        let talked = answered.elapsed().as_secs_f64().ceil().max(1.0) as u64;
        self.finish("completed", Some(talked));
    }

    /// Sleeps `d` unless a Modify Call arrives first.
    async fn interruptible(&mut self, d: Duration) -> Result<Duration, Modify> {
        let started = Instant::now();
        let rx = &mut self.rx;
        let modified = async {
            loop {
                if rx.changed().await.is_err() {
                    // The live map dropped the sender: nothing can modify the call now.
                    std::future::pending::<()>().await;
                }
                if let Some(m) = rx.borrow_and_update().clone() {
                    return m;
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(started.elapsed()),
            m = modified => Err(m),
        }
    }

    fn set(&self, f: impl FnOnce(&mut Entry)) {
        self.sim.ledger.update(&self.sid, f);
    }

    /// Final status: ledger, then the `completed` callback (with duration and price).
    fn finish(&mut self, status: &'static str, duration: Option<u64>) {
        let answered_by = self.sim.ledger.get(&self.sid).and_then(|e| e.answered_by);
        self.set(|e| {
            e.status = status.into();
            e.ended = Some(status.into());
            e.duration_seconds = Some(duration.unwrap_or(0));
        });
        let mut extra = vec![("CallDuration".to_string(), duration.unwrap_or(0).to_string())];
        if let Some(a) = answered_by {
            extra.push(("AnsweredBy".into(), a));
        }
        if status == "completed" {
            extra.push(("Price".into(), price(duration.unwrap_or(0))));
            extra.push(("PriceUnit".into(), "USD".into()));
        }
        self.status_hook("completed", status, extra);
    }

    /// The parameters every Twilio request about this call carries.
    fn base_params(&self, call_status: &str) -> Vec<(String, String)> {
        vec![
            ("CallSid".to_string(), self.sid.clone()),
            ("AccountSid".to_string(), ACCOUNT_SID.to_string()),
            ("From".to_string(), self.req.from.clone()),
            ("To".to_string(), self.req.to.clone()),
            ("Direction".to_string(), "outbound-api".to_string()),
            ("ApiVersion".to_string(), "2010-04-01".to_string()),
            ("CallStatus".to_string(), call_status.to_string()),
        ]
    }

    /// Queues a status callback if the call subscribed to `event` (`completed` always).
    fn status_hook(&mut self, event: &str, call_status: &str, extra: Vec<(String, String)>) {
        let Some(url) = self.req.status_callback.clone() else { return };
        if event != "completed" && !self.req.events.iter().any(|e| e == event) {
            return;
        }
        let mut params = self.base_params(call_status);
        params.push(("SequenceNumber".to_string(), self.seq.to_string()));
        params.push(("CallbackSource".to_string(), "call-progress-events".to_string()));
        params.push(("Timestamp".to_string(), chrono::Utc::now().to_rfc2822()));
        params.extend(extra);
        self.seq += 1;
        let _ = self.hooks.send(signed_hook(&self.sim, url, &params));
    }

    /// Reports the async AMD verdict: ledger step, then `AsyncAmdStatusCallback`
    /// (signed, retried, not faulted: the dialer's voicemail drop hangs on it).
    async fn report_amd(&mut self, verdict: &'static str) {
        self.set(|e| e.answered_by = Some(verdict.into()));
        self.sim.ledger.step(&self.sid, format!("AMD: {verdict}"));
        let Some(url) = self.req.amd_callback.clone() else { return };
        let mut params = self.base_params("in-progress");
        params.retain(|(k, _)| k == "CallSid" || k == "AccountSid");
        params.push(("AnsweredBy".to_string(), verdict.to_string()));
        let ms = if verdict == "human" { 1800 } else { 4200 };
        params.push(("MachineDetectionDuration".to_string(), ms.to_string()));
        deliver_with_retries(&self.sim, &signed_hook(&self.sim, url, &params)).await;
    }
}

fn signed_hook(sim: &Sim, url: String, params: &[(String, String)]) -> Hook {
    let header = |token: &str| vec![("X-Twilio-Signature".to_string(), signature::sign(token, &url, params))];
    Hook {
        headers: header(sim.twilio_token.expose()),
        forged_headers: header(FORGED_TOKEN),
        body: serde_urlencoded::to_string(params).unwrap_or_default().into_bytes(),
        content_type: "application/x-www-form-urlencoded",
        url,
    }
}

impl Line for Call {
    async fn fetch(&mut self, url: &str, method: Method, params: &[(String, String)]) -> Result<String, String> {
        let mut all = self.base_params("in-progress");
        all.extend_from_slice(params);
        let token = self.sim.twilio_token.expose();
        let request = match method {
            Method::Post => {
                let sig = signature::sign(token, url, &all);
                self.sim.http.post(url).header("X-Twilio-Signature", sig).form(&all)
            }
            // GET: the parameters go in the query, and the URL alone is signed.
            Method::Get => {
                let sep = if url.contains('?') { '&' } else { '?' };
                let full = format!("{url}{sep}{}", serde_urlencoded::to_string(&all).unwrap_or_default());
                let sig = signature::sign(token, &full, &[]);
                self.sim.http.get(full).header("X-Twilio-Signature", sig)
            }
        };
        let resp = request.send().await.map_err(|e| format!("no reply: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        resp.text().await.map_err(|e| format!("unreadable reply: {e}"))
    }

    async fn wait(&mut self, wait: Wait) -> Result<Duration, Modify> {
        let s = &self.sim.settings;
        let mut d = match wait {
            Wait::AgentRing => seconds_between(s.ring_seconds),
            Wait::Speech | Wait::Pause(_) | Wait::GatherTimeout | Wait::AgentTalk => seconds_between(s.talk_seconds),
        };
        // Async AMD decides while the first words play, and this verb goes on for
        // AMD_GRACE after the verdict, so the dialer's Modify Call (sent when it has
        // stored the verdict) lands inside it, as it would on a real greeting.
        if let Some(verdict) = self.amd_due.take() {
            self.report_amd(verdict).await;
            d += AMD_GRACE;
        }
        self.interruptible(d).await
    }

    fn take_modify(&mut self) -> Option<Modify> {
        if self.rx.has_changed().unwrap_or(false) { self.rx.borrow_and_update().clone() } else { None }
    }

    fn step(&mut self, step: String) {
        self.sim.ledger.step(&self.sid, step);
    }

    fn digits(&mut self, key: String) {
        self.sim.ledger.update(&self.sid, |e| {
            e.steps.push(format!("Digits: {key}"));
            e.digits.push(key);
        });
    }
}
