//! One simulated Telnyx call: its life follows the callee (`script::callee`) and
//! the dialer's commands, with webhooks signed as Telnyx signs them (Ed25519 over
//! `"{timestamp}|{body}"`) and delivered through the outbox (delay, duplicates,
//! reordering, forged copies). Every step goes in the ledger.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::config::Callee;
use crate::provider::simulator::ledger::Entry;
use crate::provider::simulator::outbox::{Hook, Outbox};
use crate::provider::simulator::script::{self, seconds_between};
use crate::provider::simulator::{Sim, TELNYX_CONNECTION_ID};
use crate::provider::telnyx::signature;

/// A callee who hears nothing from the dialer for this long hangs up.
const IDLE: Duration = Duration::from_secs(10);

/// A Dial request, as far as the simulator needs it.
#[derive(Debug, Clone)]
pub struct Dial {
    to: String,
    from: String,
    webhook_url: String,
    client_state: Option<String>,
    pub command_id: Option<String>,
    amd: String,
}

impl Dial {
    /// Validates like Telnyx (422 with the field's pointer): `connection_id`, `to`,
    /// `from` and (here, as we need it) `webhook_url`.
    pub fn parse(body: &str) -> Result<Dial, (&'static str, String)> {
        let v: Value = serde_json::from_str(body).map_err(|_| ("/", "The body is not JSON.".to_string()))?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        if text("connection_id").as_deref() != Some(TELNYX_CONNECTION_ID) {
            return Err(("/connection_id", "The connection_id is not a Call Control application.".into()));
        }
        let to = text("to").ok_or(("/to", "The 'to' number is required.".to_string()))?;
        if !to.starts_with('+') || to.len() < 8 || !to[1..].bytes().all(|b| b.is_ascii_digit()) {
            return Err(("/to", format!("The 'to' number {to} is not a valid E.164 number.")));
        }
        let from = text("from").ok_or(("/from", "The 'from' number is required.".to_string()))?;
        let webhook_url = text("webhook_url").ok_or(("/webhook_url", "webhook_url is required here.".to_string()))?;
        Ok(Dial {
            to,
            from,
            webhook_url,
            client_state: text("client_state"),
            command_id: text("command_id"),
            amd: text("answering_machine_detection").unwrap_or_else(|| "disabled".into()),
        })
    }
}

struct Live {
    resource: Value,
    alive: bool,
    started: Instant,
    client_state: Option<String>,
    commands: HashSet<String>,
    tx: mpsc::UnboundedSender<(String, Value)>,
}

/// The simulator's Telnyx calls, by `call_control_id`, and dials by `command_id`.
#[derive(Clone, Default)]
pub struct Calls {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    calls: HashMap<String, Live>,
    by_command: HashMap<String, String>,
}

pub enum Accepted {
    Yes,
    Duplicate,
    NoSuchCall,
    Ended,
}

impl Calls {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The call created by an earlier dial with this `command_id`.
    pub fn by_command(&self, command_id: &str) -> Option<Value> {
        let inner = self.lock();
        let id = inner.by_command.get(command_id)?;
        inner.calls.get(id).map(|c| c.resource.clone())
    }

    /// Retrieve-a-call's `data`.
    pub fn resource(&self, id: &str) -> Option<Value> {
        self.lock().calls.get(id).map(snapshot)
    }

    /// Active calls, as `GET /v2/connections/{id}/active_calls` lists them.
    pub fn alive(&self) -> Vec<Value> {
        self.lock().calls.values().filter(|c| c.alive).map(snapshot).collect()
    }

    /// Queues a command for the call's life; a repeated `command_id` is ignored.
    pub fn command(&self, id: &str, action: &str, body: Value) -> Accepted {
        let mut inner = self.lock();
        let Some(call) = inner.calls.get_mut(id) else { return Accepted::NoSuchCall };
        if !call.alive {
            return Accepted::Ended;
        }
        if let Some(cid) = body.get("command_id").and_then(Value::as_str)
            && !call.commands.insert(cid.to_string())
        {
            return Accepted::Duplicate;
        }
        if let Some(state) = body.get("client_state").and_then(Value::as_str) {
            call.client_state = Some(state.to_string());
        }
        if call.tx.send((action.to_string(), body)).is_err() {
            return Accepted::Ended;
        }
        Accepted::Yes
    }

    fn set_dead(&self, id: &str) -> Option<u64> {
        let mut inner = self.lock();
        let call = inner.calls.get_mut(id)?;
        call.alive = false;
        Some(call.started.elapsed().as_secs())
    }

    fn client_state(&self, id: &str) -> Option<String> {
        self.lock().calls.get(id).and_then(|c| c.client_state.clone())
    }
}

fn snapshot(c: &Live) -> Value {
    let mut r = c.resource.clone();
    r["is_alive"] = json!(c.alive);
    r["call_duration"] = json!(c.started.elapsed().as_secs());
    r["client_state"] = json!(c.client_state);
    r
}

/// Registers the call, starts its life, returns the Dial response's `data`.
pub fn start(sim: &Sim, calls: &Calls, dial: Dial) -> Value {
    let id = format!("v3:{}", uuid::Uuid::new_v4().simple());
    let resource = json!({
        "call_control_id": id, "call_leg_id": uuid::Uuid::new_v4().to_string(),
        "call_session_id": uuid::Uuid::new_v4().to_string(), "is_alive": false, "record_type": "call",
        "client_state": dial.client_state,
    });
    let callee = script::callee(&sim.settings, &dial.to);
    let mut entry = Entry::new(id.clone(), "telnyx", &dial.to, &dial.from, callee);
    entry.client_ref = dial
        .client_state
        .as_deref()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    sim.ledger.insert(entry);
    let (tx, rx) = mpsc::unbounded_channel();
    {
        let mut inner = calls.lock();
        let live = Live {
            resource: resource.clone(),
            alive: true,
            started: Instant::now(),
            client_state: dial.client_state.clone(),
            commands: HashSet::new(),
            tx,
        };
        inner.calls.insert(id.clone(), live);
        if let Some(cid) = &dial.command_id {
            inner.by_command.insert(cid.clone(), id.clone());
        }
    }
    let (sim, calls) = (sim.clone(), calls.clone());
    tokio::spawn(async move {
        let mut life = Life { outbox: Outbox::new(&sim), sim: sim.clone(), calls, id, dial, callee, rx };
        tokio::select! {
            _ = life.run() => {}
            _ = sim.shutdown.cancelled() => {}
        }
        life.outbox.flush().await;
    });
    resource
}

struct Life {
    sim: Sim,
    calls: Calls,
    outbox: Outbox,
    id: String,
    dial: Dial,
    callee: Callee,
    rx: mpsc::UnboundedReceiver<(String, Value)>,
}

impl Life {
    async fn run(&mut self) {
        self.event("call.initiated", json!({"direction": "outgoing", "state": "bridging"})).await;
        self.set_status("initiated");
        if self.callee == Callee::Failed {
            return self.hang_up("call_rejected", "callee").await;
        }
        tokio::time::sleep(seconds_between(self.sim.settings.ring_seconds)).await;
        match self.callee {
            Callee::Busy => return self.hang_up("user_busy", "callee").await,
            Callee::NoAnswer => return self.hang_up("timeout", "unknown").await,
            _ => {}
        }
        self.set_status("answered");
        self.event("call.answered", json!({"state": "answered"})).await;
        self.detect_machine().await;
        loop {
            let next = tokio::time::timeout(IDLE, self.rx.recv()).await;
            let Ok(Some((action, body))) = next else { return self.hang_up("normal_clearing", "callee").await };
            if self.obey(&action, &body).await {
                return;
            }
        }
    }

    /// The AMD events of the dial's `answering_machine_detection`.
    async fn detect_machine(&mut self) {
        if self.dial.amd == "disabled" {
            return;
        }
        let result = match self.callee {
            Callee::Voicemail => "machine",
            Callee::Fax => "fax_detected",
            _ => "human",
        };
        tokio::time::sleep(seconds_between(self.sim.settings.ring_seconds)).await;
        self.sim.ledger.update(&self.id, |e| e.answered_by = Some(result.to_string()));
        self.step(format!("AMD: {result}"));
        self.event("call.machine.detection.ended", json!({"result": result})).await;
        if self.callee == Callee::Voicemail && matches!(self.dial.amd.as_str(), "detect_beep" | "greeting_end") {
            tokio::time::sleep(seconds_between(self.sim.settings.talk_seconds)).await;
            self.step("AMD: beep_detected");
            self.event("call.machine.greeting.ended", json!({"result": "beep_detected"})).await;
        }
    }

    /// Runs one command; true when the call is over.
    async fn obey(&mut self, action: &str, body: &Value) -> bool {
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let talk = seconds_between(self.sim.settings.talk_seconds);
        match action {
            "gather_using_speak" | "gather_using_audio" => {
                self.step("Gather");
                self.step(if action == "gather_using_speak" {
                    format!("Speak: {}", text("payload"))
                } else {
                    format!("Play: {}", text("audio_url"))
                });
                tokio::time::sleep(talk).await;
                let digits = match self.callee {
                    Callee::Press1 | Callee::Press1AgentBusy | Callee::Press1AgentNoAnswer => "1",
                    Callee::Press2 => "2",
                    _ => "",
                };
                if !digits.is_empty() {
                    self.step(format!("Digits: {digits}"));
                    self.sim.ledger.update(&self.id, |e| e.digits.push(digits.to_string()));
                }
                let status = if digits.is_empty() { "timeout" } else { "valid" };
                self.event("call.gather.ended", json!({"digits": digits, "status": status})).await;
            }
            "speak" => {
                self.step(format!("Speak: {}", text("payload")));
                tokio::time::sleep(talk).await;
                self.event("call.speak.ended", json!({"status": "completed"})).await;
            }
            "playback_start" => {
                self.step(format!("Play: {}", text("audio_url")));
                tokio::time::sleep(talk).await;
                self.event("call.playback.ended", json!({"status": "completed"})).await;
            }
            "transfer" => return self.transfer(&text("to"), body.get("target_leg_client_state")).await,
            "hangup" => {
                self.step("Hangup");
                self.hang_up("normal_clearing", "caller").await;
                return true;
            }
            other => self.step(other.to_string()),
        }
        false
    }

    /// The agent answers (bridged, they talk, the callee hangs up) or the agent's
    /// leg fails (busy / no answer) and the callee's call stays up.
    async fn transfer(&mut self, to: &str, leg_state: Option<&Value>) -> bool {
        self.step(format!("Transfer: {to}"));
        tokio::time::sleep(seconds_between(self.sim.settings.ring_seconds)).await;
        let cause = match self.callee {
            Callee::Press1AgentBusy => "user_busy",
            Callee::Press1AgentNoAnswer => "timeout",
            _ => {
                self.step("Bridged");
                self.event("call.bridged", json!({"to": to})).await;
                tokio::time::sleep(seconds_between(self.sim.settings.talk_seconds)).await;
                self.hang_up("normal_clearing", "callee").await;
                return true;
            }
        };
        self.step(format!("Agent: {cause}"));
        let leg = format!("v3:{}", uuid::Uuid::new_v4().simple());
        let payload = json!({"call_control_id": leg, "client_state": leg_state, "to": to, "from": self.dial.from,
                             "hangup_cause": cause, "hangup_source": "callee", "state": "hangup"});
        self.send("call.hangup", payload).await;
        false
    }

    async fn hang_up(&mut self, cause: &str, source: &str) {
        let secs = self.calls.set_dead(&self.id).unwrap_or(0);
        let answered = self.sim.ledger.get(&self.id).is_some_and(|e| e.status == "answered");
        let duration = answered.then_some(secs.max(1));
        self.sim.ledger.update(&self.id, |e| {
            e.status = "hangup".into();
            e.ended = Some(cause.to_string());
            e.duration_seconds = duration;
        });
        let extra = json!({"hangup_cause": cause, "hangup_source": source, "state": "hangup",
                           "call_duration": duration.unwrap_or(0)});
        self.event("call.hangup", extra).await;
    }

    fn step(&self, step: impl Into<String>) {
        self.sim.ledger.step(&self.id, step);
    }

    fn set_status(&self, status: &str) {
        self.sim.ledger.update(&self.id, |e| e.status = status.to_string());
    }

    /// An event about the callee's leg, with its current client state.
    async fn event(&mut self, kind: &str, extra: Value) {
        let mut payload = json!({"call_control_id": self.id, "client_state": self.calls.client_state(&self.id),
                                 "to": self.dial.to, "from": self.dial.from});
        if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        self.send(kind, payload).await;
    }

    async fn send(&mut self, kind: &str, mut payload: Value) {
        payload["connection_id"] = json!(TELNYX_CONNECTION_ID);
        let body = json!({"data": {"record_type": "event", "event_type": kind, "id": uuid::Uuid::new_v4().to_string(),
                                   "occurred_at": Utc::now().to_rfc3339(), "payload": payload}});
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let ts = Utc::now().timestamp().to_string();
        let forger = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let headers = |key| {
            vec![
                ("telnyx-signature-ed25519".to_string(), signature::sign(key, &ts, &body)),
                ("telnyx-timestamp".to_string(), ts.clone()),
            ]
        };
        let hook = Hook {
            url: self.dial.webhook_url.clone(),
            headers: headers(&self.sim.telnyx_key),
            forged_headers: headers(&forger),
            body,
            content_type: "application/json",
        };
        self.outbox.send(hook).await;
    }
}
