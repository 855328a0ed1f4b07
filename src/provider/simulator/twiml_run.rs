//! Runs a call's TwiML from the first document to the end: fetch, parse, perform
//! the plan ([`twiml::plan`]), fetch what comes next, until a `<Hangup/>`, the end
//! of a document, a Modify Call that hangs up, or [`MAX_DOCUMENTS`]. The side
//! effects (HTTP, ledger, clock) sit behind [`Line`], so the whole loop is tested
//! with fixed documents and no network.

use std::time::Duration;

use crate::config::Callee;
use crate::provider::simulator::twiml::{self, Action, Method, Next, Wait};

/// Documents one call may run: a flow that redirects in a loop stops here.
pub const MAX_DOCUMENTS: usize = 20;

/// A Modify Call (`POST …/Calls/{sid}.json`) received while the call is live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modify {
    /// `Url` (+ `Method`): drop what the call is doing and run this document.
    Redirect { url: String, method: Method },
    /// `Status=completed` (or `canceled`): hang up.
    Hangup,
}

/// How the TwiML run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// `<Hangup/>`.
    Hangup,
    /// The last document ran out of verbs.
    DocumentEnd,
    /// A Modify Call with `Status=completed`.
    Modified,
    /// A fetch failed or a document did not parse (Twilio says "an application
    /// error has occurred" and hangs up); the reason is a ledger step.
    Error,
    /// More than [`MAX_DOCUMENTS`] documents.
    TooManyDocuments,
}

/// What the interpreter needs from a live call.
pub trait Line {
    /// Requests a TwiML URL (signed, with the call's standard parameters plus
    /// `params`); the body, or why there is none.
    fn fetch(
        &mut self,
        url: &str,
        method: Method,
        params: &[(String, String)],
    ) -> impl Future<Output = Result<String, String>> + Send;
    /// Lets `wait` pass; returns how long it took, or the Modify Call that cut it short.
    fn wait(&mut self, wait: Wait) -> impl Future<Output = Result<Duration, Modify>> + Send;
    /// A Modify Call that arrived while nothing was waiting (during a fetch).
    fn take_modify(&mut self) -> Option<Modify>;
    /// Appends a ledger step.
    fn step(&mut self, step: String);
    /// The callee pressed `key` (recorded as a step `Digits: key` and in the digits).
    fn digits(&mut self, key: String);
}

/// Runs the call's documents, starting with `url` fetched with `params`.
pub async fn run<L: Line>(
    line: &mut L,
    callee: Callee,
    url: String,
    method: Method,
    params: Vec<(String, String)>,
) -> Ended {
    let mut next = (url, method, params);
    for _ in 0..MAX_DOCUMENTS {
        let (url, method, params) = next;
        let fetched = line.fetch(&url, method, &params).await;
        if let Some(modify) = line.take_modify() {
            match modify {
                Modify::Redirect { url, method } => {
                    next = (url, method, Vec::new());
                    continue;
                }
                Modify::Hangup => return Ended::Modified,
            }
        }
        let verbs = match fetched.and_then(|body| twiml::parse(&body)) {
            Ok(verbs) => verbs,
            Err(e) => {
                line.step(format!("Error: {url}: {e}"));
                return Ended::Error;
            }
        };
        let plan = twiml::plan(&url, &verbs, callee);
        let mut last_wait = Duration::ZERO;
        let mut modified = None;
        for action in plan.actions {
            match action {
                Action::Step(step) => line.step(step),
                Action::Digits(key) => line.digits(key),
                Action::Wait(wait) => match line.wait(wait).await {
                    Ok(took) => last_wait = took,
                    Err(modify) => {
                        modified = Some(modify);
                        break;
                    }
                },
            }
        }
        next = match (modified, plan.next) {
            (Some(Modify::Redirect { url, method }), _) => (url, method, Vec::new()),
            (Some(Modify::Hangup), _) => return Ended::Modified,
            (None, Next::Fetch { url, method, params }) => (url, method, params),
            (None, Next::DialAction { url, method, status }) => {
                let talked = if status == "completed" { last_wait.as_secs_f64().ceil() as u64 } else { 0 };
                let params = vec![
                    ("DialCallStatus".to_string(), status.to_string()),
                    ("DialCallSid".to_string(), format!("CA{}", uuid::Uuid::new_v4().simple())),
                    ("DialCallDuration".to_string(), talked.to_string()),
                ];
                (url, method, params)
            }
            (None, Next::Hangup) => return Ended::Hangup,
            (None, Next::End) => return Ended::DocumentEnd,
        };
    }
    line.step(format!("Error: more than {MAX_DOCUMENTS} documents"));
    Ended::TooManyDocuments
}
