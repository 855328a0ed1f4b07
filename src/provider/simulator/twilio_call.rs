//! One simulated call's life: queued → initiated → ringing → an outcome drawn from
//! the `[simulator]` weights, with webhooks signed as Twilio signs them.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use crate::provider::simulator::{ACCOUNT_SID, Sim};
use crate::provider::twilio::signature;

pub struct CreateRequest {
    to: String,
    from: String,
    url: String,
    status_callback: Option<String>,
    events: Vec<String>,
    machine_detection: bool,
}

impl CreateRequest {
    /// Validates like Twilio: `To` and `From` required, one of `Url`/`Twiml` (we need Url).
    pub fn from_form(form: &[(String, String)]) -> Result<CreateRequest, (i64, String)> {
        let get = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let to = get("To").ok_or((21201, "No 'To' number is specified".to_string()))?;
        let from = get("From").ok_or((21213, "No 'From' number is specified".to_string()))?;
        let url = get("Url").ok_or((21205, "Url parameter is required".to_string()))?;
        if !to.starts_with('+') || to.len() < 8 || !to[1..].bytes().all(|b| b.is_ascii_digit()) {
            return Err((21211, format!("The 'To' number {to} is not a valid phone number.")));
        }
        Ok(CreateRequest {
            to,
            from,
            url,
            status_callback: get("StatusCallback"),
            events: form.iter().filter(|(k, _)| k == "StatusCallbackEvent").map(|(_, v)| v.clone()).collect(),
            machine_detection: get("MachineDetection").is_some(),
        })
    }
}

#[derive(Clone)]
pub struct SimCall {
    created: chrono::DateTime<Utc>,
    sid: String,
    to: String,
    from: String,
    status: &'static str,
    answered_by: Option<&'static str>,
    duration: Option<u64>,
}

impl SimCall {
    pub fn to(&self) -> &str {
        &self.to
    }

    pub fn from(&self) -> &str {
        &self.from
    }

    pub fn resource(&self) -> Value {
        json!({
            "sid": self.sid,
            "date_created": self.created.to_rfc2822(),
            "account_sid": ACCOUNT_SID,
            "to": self.to,
            "from": self.from,
            "status": self.status,
            "direction": "outbound-api",
            "answered_by": self.answered_by,
            "duration": self.duration.map(|d| d.to_string()),
            "api_version": "2010-04-01",
        })
    }
}

enum Outcome {
    Human,
    Machine,
    Busy,
    NoAnswer,
    Failed,
}

fn draw_outcome(sim: &Sim, to: &str) -> Outcome {
    use crate::config::Callee;
    match crate::provider::simulator::script::callee(&sim.settings, to) {
        Callee::Voicemail | Callee::Fax => Outcome::Machine,
        Callee::Busy => Outcome::Busy,
        Callee::NoAnswer => Outcome::NoAnswer,
        Callee::Failed => Outcome::Failed,
        _ => Outcome::Human,
    }
}

use crate::provider::simulator::script::seconds_between;

/// Registers the call, starts its life in the background, returns the 201 body.
pub fn start(sim: &Sim, req: CreateRequest) -> Value {
    let sid = format!("CA{}", uuid::Uuid::new_v4().simple());
    let call = SimCall {
        created: Utc::now(),
        sid: sid.clone(),
        to: req.to.clone(),
        from: req.from.clone(),
        status: "queued",
        answered_by: None,
        duration: None,
    };
    let resource = call.resource();
    sim.calls.lock().unwrap_or_else(|e| e.into_inner()).insert(sid.clone(), call);
    let sim = sim.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = life(&sim, &sid, &req) => {}
            _ = sim.shutdown.cancelled() => {}
        }
    });
    resource
}

async fn life(sim: &Sim, sid: &str, req: &CreateRequest) {
    let mut seq = 0u32;
    let outcome = draw_outcome(sim, &req.to);
    set(sim, sid, "queued", None, None);
    notify(sim, req, sid, "initiated", "initiated", &mut seq, &[]).await;
    if matches!(outcome, Outcome::Failed) {
        set(sim, sid, "failed", None, None);
        notify(sim, req, sid, "completed", "failed", &mut seq, &[]).await;
        return;
    }
    set(sim, sid, "ringing", None, None);
    notify(sim, req, sid, "ringing", "ringing", &mut seq, &[]).await;
    tokio::time::sleep(seconds_between(sim.settings.ring_seconds)).await;
    let answered_by = match outcome {
        Outcome::Busy => return finish(sim, req, sid, "busy", None, None, &mut seq).await,
        Outcome::NoAnswer => return finish(sim, req, sid, "no-answer", None, None, &mut seq).await,
        Outcome::Machine => "machine_start",
        _ => "human",
    };
    let answered_by = req.machine_detection.then_some(answered_by);
    set(sim, sid, "in-progress", answered_by, None);
    // Twilio fetches the TwiML from Url when the call connects.
    let mut voice = vec![("CallStatus".to_string(), "in-progress".to_string())];
    if let Some(a) = answered_by {
        voice.push(("AnsweredBy".into(), a.into()));
    }
    post_signed(sim, &req.url, req, sid, &voice).await;
    notify(sim, req, sid, "answered", "in-progress", &mut seq, &voice[1..]).await;
    let talk = seconds_between(sim.settings.talk_seconds);
    tokio::time::sleep(talk).await;
    finish(sim, req, sid, "completed", answered_by, Some(talk.as_secs().max(1)), &mut seq).await;
}

async fn finish(
    sim: &Sim,
    req: &CreateRequest,
    sid: &str,
    status: &'static str,
    answered_by: Option<&'static str>,
    duration: Option<u64>,
    seq: &mut u32,
) {
    set(sim, sid, status, answered_by, duration);
    let mut extra = vec![("CallDuration".to_string(), duration.unwrap_or(0).to_string())];
    if let Some(a) = answered_by {
        extra.push(("AnsweredBy".into(), a.into()));
    }
    notify(sim, req, sid, "completed", status, seq, &extra).await;
}

fn set(sim: &Sim, sid: &str, status: &'static str, answered_by: Option<&'static str>, duration: Option<u64>) {
    if let Some(call) = sim.calls.lock().unwrap_or_else(|e| e.into_inner()).get_mut(sid) {
        call.status = status;
        call.answered_by = answered_by.or(call.answered_by);
        call.duration = duration.or(call.duration);
    }
}

/// Sends a status callback if the request subscribed to `event` (`completed` always).
async fn notify(
    sim: &Sim,
    req: &CreateRequest,
    sid: &str,
    event: &str,
    call_status: &str,
    seq: &mut u32,
    extra: &[(String, String)],
) {
    let Some(url) = &req.status_callback else { return };
    if event != "completed" && !req.events.iter().any(|e| e == event) {
        return;
    }
    let mut params = vec![
        ("CallStatus".to_string(), call_status.to_string()),
        ("SequenceNumber".to_string(), seq.to_string()),
        ("CallbackSource".to_string(), "call-progress-events".to_string()),
        ("Timestamp".to_string(), Utc::now().to_rfc2822()),
    ];
    params.extend_from_slice(extra);
    *seq += 1;
    post_signed(sim, url, req, sid, &params).await;
}

async fn post_signed(sim: &Sim, url: &str, req: &CreateRequest, sid: &str, extra: &[(String, String)]) {
    let mut params = vec![
        ("CallSid".to_string(), sid.to_string()),
        ("AccountSid".to_string(), ACCOUNT_SID.to_string()),
        ("From".to_string(), req.from.clone()),
        ("To".to_string(), req.to.clone()),
        ("Direction".to_string(), "outbound-api".to_string()),
        ("ApiVersion".to_string(), "2010-04-01".to_string()),
    ];
    params.extend_from_slice(extra);
    let signature = signature::sign(sim.twilio_token.expose(), url, &params);
    for attempt in 0..3u32 {
        let sent = sim.http.post(url).header("X-Twilio-Signature", &signature).form(&params).send().await;
        match sent {
            Ok(resp) if resp.status().is_success() => return,
            Ok(resp) => tracing::warn!(%url, status = %resp.status(), "simulated carrier: webhook refused"),
            Err(e) => tracing::warn!(%url, error = %e, "simulated carrier: webhook failed"),
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
    }
}
