//! One simulated Vapi call's life: `status-update` ringing → in-progress → ended,
//! then the `end-of-call-report`, posted to the server URL the create request set
//! (`assistantOverrides.server.url`) with its headers, through the outbox (so the
//! callback faults apply; a forged copy carries a wrong secret). The callee comes
//! from `script::callee`; the assistant does the talking, so keypresses do not
//! change the outcome: a person ends the call (`customer-ended-call`). The `press_2`
//! callee asks not to be called again: halfway through the talk the assistant calls
//! its `opt_out` function (a `tool-calls` message posted to the tool's server URL,
//! our webhook without the per-call query, so the attempt comes from the call's
//! metadata) and the reply's result is recorded as a step; the person then hangs up.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::Callee;
use crate::provider::simulator::ledger::Entry;
use crate::provider::simulator::outbox::{Hook, Outbox, deliver_with_retries};
use crate::provider::simulator::script::{callee, seconds_between};
use crate::provider::simulator::{Sim, VAPI_ASSISTANT_ID};

pub struct CreateRequest {
    pub to: String,
    /// The E.164 number of `phone_number_id`.
    pub from: String,
    pub phone_number_id: String,
    /// Where webhooks go; None: nowhere (a real account would use the assistant's).
    pub server_url: Option<String>,
    pub headers: Vec<(String, String)>,
    /// `assistantOverrides.metadata`, echoed on every webhook's call object.
    pub metadata: Value,
}

/// How a callee's call ends: (answered, `endedReason`).
fn ending(callee: Callee) -> (bool, &'static str) {
    match callee {
        Callee::Voicemail | Callee::Fax => (true, "voicemail"),
        Callee::Busy => (false, "customer-busy"),
        Callee::NoAnswer => (false, "customer-did-not-answer"),
        Callee::Failed => (false, "twilio-failed-to-connect-call"),
        Callee::Silence | Callee::Press1 | Callee::Press1AgentBusy | Callee::Press1AgentNoAnswer | Callee::Press2 => {
            (true, "customer-ended-call")
        }
    }
}

/// Registers the call in the ledger, starts its life in the background, returns the entry.
pub fn start(sim: &Sim, req: CreateRequest) -> Entry {
    let id = uuid::Uuid::new_v4().to_string();
    let mut entry = Entry::new(id.clone(), "vapi", &req.to, &req.from, callee(&sim.settings, &req.to));
    entry.client_ref = Some(req.metadata.to_string());
    sim.ledger.insert(entry.clone());
    let sim = sim.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = life(&sim, &id, &req) => {}
            _ = sim.shutdown.cancelled() => {}
        }
    });
    entry
}

struct Call<'a> {
    sim: &'a Sim,
    id: &'a str,
    req: &'a CreateRequest,
    outbox: Outbox,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

async fn life(sim: &Sim, id: &str, req: &CreateRequest) {
    let Some(entry) = sim.ledger.get(id) else { return };
    let (answered, reason) = ending(entry.callee);
    let mut call =
        Call { sim, id, req, outbox: Outbox::new(sim), created_at: entry.created_at, started_at: None, ended_at: None };
    if reason != "twilio-failed-to-connect-call" {
        call.status("ringing").await;
        tokio::time::sleep(seconds_between(sim.settings.ring_seconds)).await;
    }
    let mut talk = None;
    if answered {
        call.started_at = Some(Utc::now());
        call.status("in-progress").await;
        let t = seconds_between(sim.settings.talk_seconds);
        if entry.callee == Callee::Press2 {
            tokio::time::sleep(t / 2).await;
            call.tool_call("opt_out", json!({"reason": "asked not to be called again"})).await;
            tokio::time::sleep(t - t / 2).await;
        } else {
            tokio::time::sleep(t).await;
        }
        talk = Some(t.as_secs().max(1));
    }
    call.ended_at = Some(Utc::now());
    sim.ledger.update(id, |e| {
        e.status = "ended".into();
        e.ended = Some(reason.to_string());
        e.duration_seconds = talk;
    });
    call.send("status-update", json!({"status": "ended", "endedReason": reason})).await;
    let cost = talk.map_or(0.0, |t| (t as f64 / 60.0 * 0.10 * 10_000.0).round() / 10_000.0);
    let report = json!({
        "endedReason": reason,
        "cost": cost,
        "startedAt": call.started_at,
        "endedAt": call.ended_at,
        "durationSeconds": talk,
    });
    call.send("end-of-call-report", report).await;
    call.outbox.flush().await;
}

impl Call<'_> {
    async fn status(&mut self, status: &str) {
        self.sim.ledger.update(self.id, |e| e.status = status.to_string());
        self.send("status-update", json!({"status": status})).await;
    }

    /// The assistant calls function `name`: a `tool-calls` message, whose reply the
    /// assistant waits for, so it is posted at once (not through the outbox and its
    /// faults) to the tool's server URL. The reply's `result` is recorded as a step.
    async fn tool_call(&self, name: &str, arguments: Value) {
        let Some(url) = &self.req.server_url else {
            self.sim.ledger.step(self.id, format!("tool-calls: {name} → no server URL"));
            return;
        };
        // A tool's server URL is set once on the assistant: no per-call query.
        let url = url.split('?').next().unwrap_or(url).to_string();
        let tool_call_id = format!("call_{}", uuid::Uuid::new_v4().simple());
        let list =
            json!([{"id": tool_call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]);
        let message = self.message("tool-calls", json!({"toolCallList": list}));
        let hook = Hook {
            url,
            body: json!({"message": message}).to_string().into_bytes(),
            content_type: "application/json",
            headers: self.req.headers.clone(),
            forged_headers: vec![],
        };
        let reply = match deliver_with_retries(self.sim, &hook).await {
            Some(resp) => resp.json::<Value>().await.unwrap_or(Value::Null),
            None => Value::Null,
        };
        let result = reply["results"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["toolCallId"] == tool_call_id.as_str()))
            .and_then(|r| r["result"].as_str())
            .unwrap_or("no result");
        self.sim.ledger.step(self.id, format!("tool-calls: {name} → {result}"));
    }

    /// A server message of type `kind` about this call, with `fields` added.
    fn message(&self, kind: &str, fields: Value) -> Value {
        let mut message = json!({
            "type": kind,
            "timestamp": Utc::now().timestamp_millis(),
            "call": {
                "id": self.id,
                "orgId": "org-simulator",
                "type": "outboundPhoneCall",
                "assistantId": VAPI_ASSISTANT_ID,
                "phoneNumberId": self.req.phone_number_id,
                "customer": {"number": self.req.to},
                "createdAt": self.created_at,
                "startedAt": self.started_at,
                "endedAt": self.ended_at,
                "assistantOverrides": {"metadata": self.req.metadata},
            },
            "customer": {"number": self.req.to},
        });
        if let (Some(m), Some(f)) = (message.as_object_mut(), fields.as_object()) {
            m.extend(f.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        message
    }

    /// Posts one `{"message": {...}}` webhook (if the request gave a server URL).
    async fn send(&mut self, kind: &str, fields: Value) {
        self.sim.ledger.step(
            self.id,
            format!("{kind}: {}", fields["endedReason"].as_str().or(fields["status"].as_str()).unwrap_or("")),
        );
        let Some(url) = &self.req.server_url else { return };
        let message = self.message(kind, fields);
        let forged = self.req.headers.iter().map(|(k, v)| (k.clone(), format!("forged-{v}"))).collect();
        self.outbox
            .send(Hook {
                url: url.clone(),
                body: json!({"message": message}).to_string().into_bytes(),
                content_type: "application/json",
                headers: self.req.headers.clone(),
                forged_headers: forged,
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callees_end_with_vapi_reasons() {
        assert_eq!(ending(Callee::Busy), (false, "customer-busy"));
        assert_eq!(ending(Callee::Fax), (true, "voicemail"));
        assert_eq!(ending(Callee::Press2), (true, "customer-ended-call"));
        assert_eq!(ending(Callee::Failed), (false, "twilio-failed-to-connect-call"));
        // Every reason the simulator sends maps to the outcome its callee stands for.
        use crate::domain::status::Status;
        for c in Callee::ALL {
            let (answered, reason) = ending(c);
            let want = match c {
                Callee::Busy => Status::Busy,
                Callee::NoAnswer => Status::NoAnswer,
                Callee::Failed => Status::Failed,
                Callee::Voicemail | Callee::Fax => Status::Voicemail,
                _ => Status::Completed,
            };
            assert_eq!(crate::provider::vapi::ended(reason, answered).status, want, "{c:?}");
        }
    }
}
