//! TwiML as the simulated carrier understands it: [`parse`] turns a `<Response>`
//! document into [`Verb`]s, and [`plan`] works out what one document does for a
//! callee: the ledger steps, the waits and what to fetch next. Both are pure (no
//! I/O, no clock), so the interpreter is tested on fixed documents;
//! `twiml_run` performs a plan on a live call.
//!
//! Supported verbs (providers.md §1.11): `Say`, `Play`, `Pause`, `Gather` (with
//! `Say`/`Play`/`Pause` inside), `Dial` (a number as text or one `<Number>`),
//! `Redirect`, `Hangup`. Anything else is a document error, as Twilio's 12200.

use crate::config::Callee;

/// How a TwiML URL is requested (`method` attribute; POST by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Say(String),
    /// The media URL.
    Play(String),
    /// `length` in seconds (Twilio's default 1).
    Pause(u32),
    Gather {
        action: Option<String>,
        method: Method,
        children: Vec<Verb>,
    },
    Dial {
        number: String,
        action: Option<String>,
        method: Method,
    },
    Redirect {
        url: String,
        method: Method,
    },
    Hangup,
}

/// Parses a TwiML document. Errors name what is wrong (not XML, root not
/// `<Response>`, an unknown verb, a verb missing its text).
pub fn parse(xml: &str) -> Result<Vec<Verb>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "Response" {
        return Err(format!("root element is <{}>, not <Response>", root.tag_name().name()));
    }
    root.children().filter(roxmltree::Node::is_element).map(|n| verb(n, false)).collect()
}

fn verb(node: roxmltree::Node<'_, '_>, in_gather: bool) -> Result<Verb, String> {
    let name = node.tag_name().name();
    let text = || node.text().map(str::trim).unwrap_or("").to_string();
    let method = || match node.attribute("method") {
        Some(m) if m.eq_ignore_ascii_case("GET") => Ok(Method::Get),
        None => Ok(Method::Post),
        Some(m) if m.eq_ignore_ascii_case("POST") => Ok(Method::Post),
        Some(m) => Err(format!("<{name}> has method {m:?}: GET or POST")),
    };
    let required = |what: &str| {
        let t = text();
        if t.is_empty() { Err(format!("<{name}> without {what}")) } else { Ok(t) }
    };
    let action = || node.attribute("action").map(str::to_string);
    match name {
        "Say" => Ok(Verb::Say(text())),
        "Play" => Ok(Verb::Play(required("a URL")?)),
        "Pause" => {
            let length = node.attribute("length").map_or(Ok(1), |l| l.parse::<u32>());
            Ok(Verb::Pause(length.map_err(|_| "<Pause> length is not a whole number of seconds".to_string())?))
        }
        _ if in_gather => Err(format!("<{name}> inside <Gather>: only Say, Play and Pause nest there")),
        "Gather" => {
            let children = node.children().filter(roxmltree::Node::is_element).map(|n| verb(n, true));
            Ok(Verb::Gather { action: action(), method: method()?, children: children.collect::<Result<_, _>>()? })
        }
        "Dial" => {
            let nested = node.children().find(|n| n.has_tag_name("Number"));
            let number = match nested {
                Some(n) => n.text().map(str::trim).unwrap_or("").to_string(),
                None => text(),
            };
            if number.is_empty() {
                return Err("<Dial> without a number".into());
            }
            Ok(Verb::Dial { number, action: action(), method: method()? })
        }
        "Redirect" => Ok(Verb::Redirect { url: required("a URL")?, method: method()? }),
        "Hangup" => Ok(Verb::Hangup),
        other => Err(format!("unsupported verb <{other}>")),
    }
}

/// A stretch of call time; `twiml_run` scales each to the `[simulator]` ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A Say or Play being heard.
    Speech,
    /// `<Pause length>`, seconds.
    Pause(u32),
    /// A Gather waiting for a key that does not come.
    GatherTimeout,
    /// The callee talking with the agent after a transfer.
    AgentTalk,
    /// The agent's phone ringing out (no answer) or a quick busy signal.
    AgentRing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A ledger step (`Say: …`, `Gather`, `Dial: +1…`, `Redirect`, `Hangup`, `Pause`).
    Step(String),
    /// The callee pressed this key (ledger step `Digits: 1` and the entry's digits).
    Digits(String),
    Wait(Wait),
}

/// What follows the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Request `url` and run the TwiML it returns (Gather action, Redirect).
    Fetch { url: String, method: Method, params: Vec<(String, String)> },
    /// The Dial action: `DialCallStatus` is known, the leg's sid and duration are
    /// added when it runs.
    DialAction { url: String, method: Method, status: &'static str },
    /// `<Hangup/>`.
    Hangup,
    /// The document ran out: the call ends (completed).
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub next: Next,
}

/// The key `callee` presses in a Gather, if any.
pub fn key_pressed(callee: Callee) -> Option<&'static str> {
    match callee {
        Callee::Press1 | Callee::Press1AgentBusy | Callee::Press1AgentNoAnswer => Some("1"),
        Callee::Press2 => Some("2"),
        _ => None,
    }
}

/// How the agent leg of a `<Dial>` ends for `callee`: its `DialCallStatus` and the wait.
pub fn dial_outcome(callee: Callee) -> (&'static str, Wait) {
    match callee {
        Callee::Press1AgentBusy => ("busy", Wait::AgentRing),
        Callee::Press1AgentNoAnswer => ("no-answer", Wait::AgentRing),
        _ => ("completed", Wait::AgentTalk),
    }
}

/// What running `verbs` (fetched from `doc_url`) does with `callee` on the line.
/// A Gather without `action` posts to the document's own URL, as Twilio's does.
pub fn plan(doc_url: &str, verbs: &[Verb], callee: Callee) -> Plan {
    let mut actions = Vec::new();
    for verb in verbs {
        match verb {
            Verb::Say(_) | Verb::Play(_) | Verb::Pause(_) => speak(verb, &mut actions),
            Verb::Gather { action, method, children } => {
                actions.push(Action::Step("Gather".into()));
                children.iter().for_each(|c| speak(c, &mut actions));
                match key_pressed(callee) {
                    Some(key) => {
                        actions.push(Action::Digits(key.into()));
                        let url = action.clone().unwrap_or_else(|| doc_url.to_string());
                        let params = vec![("Digits".to_string(), key.to_string())];
                        return Plan { actions, next: Next::Fetch { url, method: *method, params } };
                    }
                    // No input: Twilio falls through to the next verb.
                    None => actions.push(Action::Wait(Wait::GatherTimeout)),
                }
            }
            Verb::Dial { number, action, method } => {
                actions.push(Action::Step(format!("Dial: {number}")));
                let (status, wait) = dial_outcome(callee);
                actions.push(Action::Wait(wait));
                // Without an action the document goes on after the agent leg.
                if let Some(url) = action {
                    return Plan { actions, next: Next::DialAction { url: url.clone(), method: *method, status } };
                }
            }
            Verb::Redirect { url, method } => {
                actions.push(Action::Step("Redirect".into()));
                return Plan { actions, next: Next::Fetch { url: url.clone(), method: *method, params: Vec::new() } };
            }
            Verb::Hangup => {
                actions.push(Action::Step("Hangup".into()));
                return Plan { actions, next: Next::Hangup };
            }
        }
    }
    Plan { actions, next: Next::End }
}

fn speak(verb: &Verb, actions: &mut Vec<Action>) {
    let (step, wait) = match verb {
        Verb::Say(text) => (format!("Say: {text}"), Wait::Speech),
        Verb::Play(url) => (format!("Play: {url}"), Wait::Speech),
        Verb::Pause(length) => ("Pause".to_string(), Wait::Pause(*length)),
        _ => return,
    };
    actions.push(Action::Step(step));
    actions.push(Action::Wait(wait));
}

#[cfg(test)]
#[path = "twiml_tests.rs"]
mod tests;
