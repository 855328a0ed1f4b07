//! The TwiML interpreter on fixed documents: parsing, one document's plan per
//! callee, and whole flows across documents through a scripted `Line`.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::provider::simulator::twiml_run::{self, Ended, Line, Modify};

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
const GATHER: &str = "https://d.example/webhooks/twilio/gather?attempt_id=7&amp;round=1";

/// The contract's message document for a person.
fn message_doc(round: u32) -> String {
    let action = format!("https://d.example/webhooks/twilio/gather?attempt_id=7&amp;round={round}");
    format!(
        r#"{HEAD}<Response><Gather input="dtmf" numDigits="1" timeout="5" action="{action}" method="POST"><Say>Hello &amp; welcome</Say></Gather><Redirect method="POST">{action}</Redirect></Response>"#
    )
}

fn steps(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Step(s) => Some(s.clone()),
            Action::Digits(d) => Some(format!("Digits: {d}")),
            Action::Wait(_) => None,
        })
        .collect()
}

#[test]
fn parses_the_contract_documents() {
    let verbs = parse(&message_doc(1)).unwrap();
    let url = GATHER.replace("&amp;", "&");
    assert_eq!(
        verbs,
        vec![
            Verb::Gather {
                action: Some(url.clone()),
                method: Method::Post,
                children: vec![Verb::Say("Hello & welcome".into())]
            },
            Verb::Redirect { url, method: Method::Post },
        ]
    );
    let dial = format!(
        r#"{HEAD}<Response><Say>Connecting you now.</Say><Dial callerId="+12025550101" timeout="20" action="https://d/dial?attempt_id=7" method="POST">+14155550000</Dial></Response>"#
    );
    assert_eq!(
        parse(&dial).unwrap()[1],
        Verb::Dial {
            number: "+14155550000".into(),
            action: Some("https://d/dial?attempt_id=7".into()),
            method: Method::Post
        }
    );
    let nested = "<Response><Dial><Number> +14155550001 </Number></Dial><Pause length=\"2\"/><Play>https://a/x.mp3</Play><Hangup/></Response>";
    assert_eq!(
        parse(nested).unwrap(),
        vec![
            Verb::Dial { number: "+14155550001".into(), action: None, method: Method::Post },
            Verb::Pause(2),
            Verb::Play("https://a/x.mp3".into()),
            Verb::Hangup
        ]
    );
    assert_eq!(parse("<Response/>").unwrap(), vec![]);
}

#[test]
fn refuses_what_twilio_would_not_run() {
    for (doc, says) in [
        ("not xml", "not XML"),
        ("<Reply><Hangup/></Reply>", "not <Response>"),
        ("<Response><Record/></Response>", "unsupported verb <Record>"),
        ("<Response><Gather><Dial>+1</Dial></Gather></Response>", "inside <Gather>"),
        ("<Response><Dial/></Response>", "without a number"),
        ("<Response><Redirect/></Response>", "without a URL"),
        ("<Response><Pause length=\"x\"/></Response>", "whole number"),
        ("<Response><Redirect method=\"PUT\">http://a</Redirect></Response>", "GET or POST"),
    ] {
        let err = parse(doc).unwrap_err();
        assert!(err.contains(says), "{doc}: {err}");
    }
}

#[test]
fn a_gather_presses_per_callee_or_falls_through() {
    let verbs = parse(&message_doc(1)).unwrap();
    let url = GATHER.replace("&amp;", "&");
    let press = plan("https://d/voice", &verbs, Callee::Press2);
    assert_eq!(steps(&press), ["Gather", "Say: Hello & welcome", "Digits: 2"]);
    assert_eq!(
        press.next,
        Next::Fetch { url: url.clone(), method: Method::Post, params: vec![("Digits".into(), "2".into())] }
    );
    for callee in [Callee::Silence, Callee::Voicemail, Callee::Fax] {
        let silent = plan("https://d/voice", &verbs, callee);
        assert_eq!(steps(&silent), ["Gather", "Say: Hello & welcome", "Redirect"]);
        assert!(silent.actions.contains(&Action::Wait(Wait::GatherTimeout)));
        assert_eq!(silent.next, Next::Fetch { url: url.clone(), method: Method::Post, params: vec![] });
    }
    // No action: the key goes to the document's own URL.
    let bare = plan("https://d/voice", &parse("<Response><Gather/></Response>").unwrap(), Callee::Press1);
    assert!(matches!(bare.next, Next::Fetch { ref url, .. } if url == "https://d/voice"));
}

#[test]
fn a_dial_ends_per_callee() {
    let doc = "<Response><Dial action=\"https://d/dial\">+14155550000</Dial><Say>never</Say></Response>";
    let verbs = parse(doc).unwrap();
    for (callee, status, wait) in [
        (Callee::Press1, "completed", Wait::AgentTalk),
        (Callee::Press1AgentBusy, "busy", Wait::AgentRing),
        (Callee::Press1AgentNoAnswer, "no-answer", Wait::AgentRing),
    ] {
        let p = plan("https://d/gather", &verbs, callee);
        assert_eq!(steps(&p), ["Dial: +14155550000"]);
        assert!(p.actions.contains(&Action::Wait(wait)));
        assert_eq!(p.next, Next::DialAction { url: "https://d/dial".into(), method: Method::Post, status });
    }
    // Without an action the document goes on.
    let p = plan(
        "https://d/gather",
        &parse("<Response><Dial>+1415</Dial><Say>after</Say></Response>").unwrap(),
        Callee::Press1,
    );
    assert_eq!(steps(&p), ["Dial: +1415", "Say: after"]);
    assert_eq!(p.next, Next::End);
}

#[test]
fn hangup_stops_the_document() {
    let p = plan(
        "u",
        &parse("<Response><Say>Bye</Say><Pause/><Hangup/><Say>unheard</Say></Response>").unwrap(),
        Callee::Silence,
    );
    assert_eq!(steps(&p), ["Say: Bye", "Pause", "Hangup"]);
    assert_eq!(p.next, Next::Hangup);
}

/// A line whose dialer answers from fixed documents keyed by URL (query included).
struct Scripted {
    docs: HashMap<String, String>,
    fetched: Vec<(String, Vec<(String, String)>)>,
    steps: Vec<String>,
    /// Delivered at the first wait.
    modify: Option<Modify>,
}

impl Scripted {
    fn new(docs: &[(&str, String)]) -> Scripted {
        let docs = docs.iter().map(|(u, d)| (u.to_string(), d.clone())).collect();
        Scripted { docs, fetched: vec![], steps: vec![], modify: None }
    }
}

impl Line for Scripted {
    async fn fetch(&mut self, url: &str, _: Method, params: &[(String, String)]) -> Result<String, String> {
        self.fetched.push((url.to_string(), params.to_vec()));
        self.docs.get(url).cloned().ok_or_else(|| "HTTP 404".to_string())
    }
    async fn wait(&mut self, _: Wait) -> Result<Duration, Modify> {
        self.modify.take().map_or(Ok(Duration::from_millis(1500)), Err)
    }
    fn take_modify(&mut self) -> Option<Modify> {
        None
    }
    fn step(&mut self, step: String) {
        self.steps.push(step);
    }
    fn digits(&mut self, key: String) {
        self.steps.push(format!("Digits: {key}"));
    }
}

fn gather_url(round: u32) -> String {
    format!("https://d.example/webhooks/twilio/gather?attempt_id=7&round={round}")
}

#[tokio::test]
async fn a_silent_callee_hears_the_message_twice_then_goodbye() {
    let mut line = Scripted::new(&[
        ("voice", message_doc(1)),
        (gather_url(1).as_str(), message_doc(2)),
        (gather_url(2).as_str(), "<Response><Say>Goodbye.</Say><Hangup/></Response>".into()),
    ]);
    let ended = twiml_run::run(&mut line, Callee::Silence, "voice".into(), Method::Post, vec![]).await;
    assert_eq!(ended, Ended::Hangup);
    let msg = "Say: Hello & welcome";
    assert_eq!(line.steps, ["Gather", msg, "Redirect", "Gather", msg, "Redirect", "Say: Goodbye.", "Hangup"]);
}

#[tokio::test]
async fn a_transfer_posts_the_dial_result() {
    let dial = "<Response><Say>Connecting you now.</Say><Dial action=\"dial\">+14155550000</Dial></Response>";
    let mut line = Scripted::new(&[
        ("voice", message_doc(1)),
        (gather_url(1).as_str(), dial.into()),
        ("dial", "<Response><Say>Sorry</Say><Hangup/></Response>".into()),
    ]);
    let ended = twiml_run::run(&mut line, Callee::Press1AgentBusy, "voice".into(), Method::Post, vec![]).await;
    assert_eq!(ended, Ended::Hangup);
    assert_eq!(
        line.steps,
        [
            "Gather",
            "Say: Hello & welcome",
            "Digits: 1",
            "Say: Connecting you now.",
            "Dial: +14155550000",
            "Say: Sorry",
            "Hangup"
        ]
    );
    assert_eq!(line.fetched[1].1, vec![("Digits".to_string(), "1".to_string())]);
    let dial_params = &line.fetched[2].1;
    assert_eq!(dial_params[0], ("DialCallStatus".into(), "busy".into()));
    assert!(dial_params[1].1.starts_with("CA"));
    assert_eq!(dial_params[2], ("DialCallDuration".into(), "0".into()));
    // An answered agent leg reports the talk time, whole seconds rounded up.
    let mut line = Scripted::new(&[("voice", message_doc(1)), (gather_url(1).as_str(), dial.into())]);
    line.docs.insert("dial".into(), "<Response><Hangup/></Response>".into());
    twiml_run::run(&mut line, Callee::Press1, "voice".into(), Method::Post, vec![]).await;
    assert_eq!(line.fetched[2].1[0].1, "completed");
    assert_eq!(line.fetched[2].1[2].1, "2");
}

#[tokio::test]
async fn a_modify_call_replaces_the_running_document() {
    let mut line =
        Scripted::new(&[("voice", message_doc(1)), ("vm", "<Response><Say>Call us</Say><Hangup/></Response>".into())]);
    line.modify = Some(Modify::Redirect { url: "vm".into(), method: Method::Post });
    let ended = twiml_run::run(&mut line, Callee::Voicemail, "voice".into(), Method::Post, vec![]).await;
    assert_eq!(ended, Ended::Hangup);
    assert_eq!(line.steps, ["Gather", "Say: Hello & welcome", "Say: Call us", "Hangup"]);
    let mut line = Scripted::new(&[("voice", message_doc(1))]);
    line.modify = Some(Modify::Hangup);
    let ended = twiml_run::run(&mut line, Callee::Fax, "voice".into(), Method::Post, vec![]).await;
    assert_eq!((ended, line.steps.len()), (Ended::Modified, 2));
}

#[tokio::test]
async fn errors_and_loops_end_the_call() {
    let mut line = Scripted::new(&[("voice", "<Response><Redirect>voice</Redirect></Response>".into())]);
    let ended = twiml_run::run(&mut line, Callee::Silence, "voice".into(), Method::Post, vec![]).await;
    assert_eq!(ended, Ended::TooManyDocuments);
    assert_eq!(line.fetched.len(), twiml_run::MAX_DOCUMENTS);
    let mut line = Scripted::new(&[("voice", "<Response><Redirect>gone</Redirect></Response>".into())]);
    let ended = twiml_run::run(&mut line, Callee::Silence, "voice".into(), Method::Post, vec![]).await;
    assert_eq!(ended, Ended::Error);
    assert_eq!(line.steps, ["Redirect", "Error: gone: HTTP 404"]);
    let mut line = Scripted::new(&[("voice", "<Response><Say>Hi</Say></Response>".into())]);
    let ended = twiml_run::run(&mut line, Callee::Silence, "voice".into(), Method::Post, vec![]).await;
    assert_eq!((ended, line.steps), (Ended::DocumentEnd, vec!["Say: Hi".to_string()]));
}
