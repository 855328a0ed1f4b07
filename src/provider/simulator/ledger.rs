//! The simulated carrier's ledger: every call it created, whatever API created it,
//! with what the call did. `GET /sim/ledger` serves it, so tests count real dials
//! (a lead dialled twice shows as two entries to one number).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Callee;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Twilio `CA…` sid, Telnyx `call_control_id`, Vapi call id.
    pub call_id: String,
    /// `twilio`, `telnyx` or `vapi`.
    pub api: &'static str,
    pub to: String,
    pub from: String,
    pub created_at: DateTime<Utc>,
    pub callee: Callee,
    /// The provider's own status word (Twilio `completed`, Telnyx `hangup`, Vapi `ended`).
    pub status: String,
    pub answered_by: Option<String>,
    pub duration_seconds: Option<u64>,
    /// Keys the callee pressed, in order.
    pub digits: Vec<String>,
    /// What the call did, in order: TwiML verbs (`Say: …`, `Gather`, `Dial: +1…`,
    /// `Hangup`), Telnyx commands, Vapi reports.
    pub steps: Vec<String>,
    /// How the call ended, in the API's words (Twilio status, Telnyx `hangup_cause`,
    /// Vapi `endedReason`); None while it is alive.
    pub ended: Option<String>,
    /// What the dialer attached to the call (attempt id, client state, metadata).
    pub client_ref: Option<String>,
}

impl Entry {
    pub fn new(call_id: String, api: &'static str, to: &str, from: &str, callee: Callee) -> Entry {
        Entry {
            call_id,
            api,
            to: to.to_string(),
            from: from.to_string(),
            created_at: Utc::now(),
            callee,
            status: "queued".into(),
            answered_by: None,
            duration_seconds: None,
            digits: Vec::new(),
            steps: Vec::new(),
            ended: None,
            client_ref: None,
        }
    }
}

#[derive(Clone, Default)]
pub struct Ledger {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, entry: Entry) {
        let mut inner = self.lock();
        let idx = inner.entries.len();
        inner.by_id.insert(entry.call_id.clone(), idx);
        inner.entries.push(entry);
    }

    /// Runs `f` on the call's entry; false when there is no such call.
    pub fn update(&self, call_id: &str, f: impl FnOnce(&mut Entry)) -> bool {
        let mut inner = self.lock();
        let Some(idx) = inner.by_id.get(call_id).copied() else { return false };
        f(&mut inner.entries[idx]);
        true
    }

    /// Appends one step to the call's history.
    pub fn step(&self, call_id: &str, step: impl Into<String>) {
        let step = step.into();
        self.update(call_id, |e| e.steps.push(step));
    }

    pub fn get(&self, call_id: &str) -> Option<Entry> {
        let inner = self.lock();
        inner.by_id.get(call_id).map(|idx| inner.entries[*idx].clone())
    }

    /// Every call, in creation order.
    pub fn all(&self) -> Vec<Entry> {
        self.lock().entries.clone()
    }

    /// Calls of `api` matching `filter`, in creation order.
    pub fn filter(&self, api: &str, filter: impl Fn(&Entry) -> bool) -> Vec<Entry> {
        self.lock().entries.iter().filter(|e| e.api == api && filter(e)).cloned().collect()
    }
}
