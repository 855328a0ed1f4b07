use super::*;
use crate::provider::telnyx::events::Payload;

fn flow(amd: AmdMode) -> Flow {
    Flow {
        amd,
        message: "Hello from us.".into(),
        message_audio_url: None,
        agent_number: Some("+14155550199".into()),
        voicemail_message: Some("Please call back.".into()),
        transfer_from: "+14155550100".into(),
    }
}

fn event(kind: &str, payload: Payload) -> Event {
    Event { event_type: kind.into(), id: "e".into(), occurred_at: None, payload }
}

fn at(step: Step) -> ClientState {
    ClientState { attempt_id: 9, step, to: None, from: None }
}

fn with(f: impl FnOnce(&mut Payload)) -> Payload {
    let mut p = Payload::default();
    f(&mut p);
    p
}

/// (action, step) of each command.
fn actions(d: &Decision) -> Vec<(&'static str, Step)> {
    d.commands.iter().map(|c| (c.action, c.state.step)).collect()
}

#[test]
fn a_person_hears_the_message_in_a_one_digit_gather() {
    let d = decide(&event("call.answered", Payload::default()), &at(Step::Dial), &flow(AmdMode::Off), Known::default());
    assert_eq!(actions(&d), [("gather_using_speak", Step::Gather1)]);
    let body = &d.commands[0].body;
    assert_eq!(body["payload"], "Hello from us.");
    assert_eq!((body["valid_digits"].as_str(), body["maximum_digits"].as_u64()), (Some("12"), Some(1)));
    // With AMD the answer waits for the verdict.
    let d = decide(
        &event("call.answered", Payload::default()),
        &at(Step::Dial),
        &flow(AmdMode::DetectMessageEnd),
        Known::default(),
    );
    assert!(d.commands.is_empty());
    let human = event("call.machine.detection.ended", with(|p| p.result = Some("human".into())));
    let d = decide(&human, &at(Step::Dial), &flow(AmdMode::DetectMessageEnd), Known::default());
    assert_eq!(actions(&d), [("gather_using_speak", Step::Gather1)]);
    assert_eq!(d.effects, [Effect::AnsweredBy("human".into())]);
    // An audio message is played instead.
    let mut audio = flow(AmdMode::Off);
    audio.message_audio_url = Some("https://x.example/m.mp3".into());
    let d = decide(&event("call.answered", Payload::default()), &at(Step::Dial), &audio, Known::default());
    assert_eq!(
        (d.commands[0].action, d.commands[0].body["audio_url"].as_str()),
        ("gather_using_audio", Some("https://x.example/m.mp3"))
    );
}

#[test]
fn keys_transfer_opt_out_repeat_and_say_goodbye() {
    let f = flow(AmdMode::Off);
    let gathered = |digits: &str| event("call.gather.ended", with(|p| p.digits = Some(digits.into())));
    let d = decide(&gathered("1"), &at(Step::Gather1), &f, Known::default());
    assert_eq!(actions(&d), [("transfer", Step::Transfer)]);
    assert_eq!(
        (d.commands[0].body["to"].as_str(), d.commands[0].body["from"].as_str()),
        (Some("+14155550199"), Some("+14155550100"))
    );
    let agent_state = ClientState::decode(d.commands[0].body["target_leg_client_state"].as_str().unwrap()).unwrap();
    assert_eq!(agent_state.step, Step::AgentLeg);
    assert_eq!(d.effects, [Effect::Digits("1".into())]);
    let d = decide(&gathered("2"), &at(Step::Gather2), &f, Known::default());
    assert_eq!((actions(&d), d.effects), (vec![("speak", Step::OptedOut)], vec![Effect::OptOut]));
    let d = decide(&gathered(""), &at(Step::Gather1), &f, Known::default());
    assert_eq!(actions(&d), [("gather_using_speak", Step::Gather2)]);
    let d = decide(&gathered(""), &at(Step::Gather2), &f, Known::default());
    assert_eq!(actions(&d), [("speak", Step::Goodbye)]);
    // 1 without an agent number is like any other key.
    let mut no_agent = flow(AmdMode::Off);
    no_agent.agent_number = None;
    let d = decide(&gathered("1"), &at(Step::Gather1), &no_agent, Known::default());
    assert_eq!(actions(&d), [("gather_using_speak", Step::Gather2)]);
    // Each message that ends the call is followed by a hangup in the same step.
    for step in [Step::OptedOut, Step::Goodbye, Step::Voicemail, Step::TransferFailed] {
        let d = decide(&event("call.speak.ended", Payload::default()), &at(step), &f, Known::default());
        assert_eq!(actions(&d), [("hangup", step)]);
    }
    // A gather that ended because the call flow moved on does nothing.
    assert!(decide(&gathered(""), &at(Step::Machine), &f, Known::default()).commands.is_empty());
}

#[test]
fn transfers_connect_or_fail_with_an_apology() {
    let f = flow(AmdMode::Off);
    let d = decide(&event("call.bridged", Payload::default()), &at(Step::Transfer), &f, Known::default());
    assert_eq!(d.effects, [Effect::Transfer("connected")]);
    let hangup = event("call.hangup", with(|p| p.hangup_cause = Some("user_busy".into())));
    let d = decide(&hangup, &at(Step::AgentLeg), &f, Known::default());
    assert_eq!((actions(&d), d.effects), (vec![("speak", Step::TransferFailed)], vec![Effect::Transfer("failed")]));
    // After a connected transfer the agent hanging up is the normal end.
    let connected = Known { transfer_connected: true, ..Known::default() };
    assert_eq!(decide(&hangup, &at(Step::AgentLeg), &f, connected), Decision::default());
}

#[test]
fn machines_get_the_voicemail_after_the_beep_and_faxes_a_hangup() {
    let machine = event("call.machine.detection.ended", with(|p| p.result = Some("machine".into())));
    let beep = event("call.machine.greeting.ended", with(|p| p.result = Some("beep_detected".into())));
    let f = flow(AmdMode::DetectMessageEnd);
    let d = decide(&machine, &at(Step::Dial), &f, Known::default());
    assert!(d.commands.is_empty(), "waits for the beep");
    assert_eq!(d.effects, [Effect::AnsweredBy("machine".into())]);
    let d = decide(&beep, &at(Step::Dial), &f, Known { answered_by: true, ..Known::default() });
    assert_eq!(actions(&d), [("speak", Step::Voicemail)]);
    assert_eq!(d.commands[0].body["payload"], "Please call back.");
    // `enable` (Telnyx `detect`) cannot wait for a beep: hang up, as Twilio's machine_start.
    assert_eq!(
        actions(&decide(&machine, &at(Step::Dial), &flow(AmdMode::Enable), Known::default())),
        [("hangup", Step::Machine)]
    );
    let mut silent = flow(AmdMode::DetectMessageEnd);
    silent.voicemail_message = None;
    assert_eq!(actions(&decide(&machine, &at(Step::Dial), &silent, Known::default())), [("hangup", Step::Machine)]);
    let fax = event("call.machine.detection.ended", with(|p| p.result = Some("fax_detected".into())));
    assert_eq!(actions(&decide(&fax, &at(Step::Dial), &f, Known::default())), [("hangup", Step::Fax)]);
    // A verdict arriving after the greeting (reordered) is not acted on twice.
    let late = Known { answered_by: true, ..Known::default() };
    assert_eq!(decide(&machine, &at(Step::Dial), &f, late), Decision::default());
    // Nothing is sent to a call that is over.
    let ended = Known { ended: true, ..Known::default() };
    assert_eq!(decide(&beep, &at(Step::Dial), &f, ended), Decision::default());
}

#[test]
fn a_key_pressed_before_the_hangup_is_kept_when_its_event_comes_after() {
    // The gather event handled after call.hangup (late or redelivered): nothing can
    // be said any more, but the opt-out and the digits are recorded.
    let f = flow(AmdMode::Off);
    let ended = Known { ended: true, ..Known::default() };
    let gathered = |digits: &str| event("call.gather.ended", with(|p| p.digits = Some(digits.into())));
    for step in [Step::Gather1, Step::Gather2] {
        let d = decide(&gathered("2"), &at(step), &f, ended);
        assert_eq!((actions(&d), d.effects), (vec![], vec![Effect::OptOut]), "{step:?}");
    }
    let d = decide(&gathered("1"), &at(Step::Gather1), &f, ended);
    assert_eq!((actions(&d), d.effects), (vec![], vec![Effect::Digits("1".into())]));
    assert_eq!(decide(&gathered(""), &at(Step::Gather2), &f, ended), Decision::default());
    // A late AMD verdict or a spoken step's end sends nothing and records nothing.
    let human = event("call.machine.detection.ended", with(|p| p.result = Some("human".into())));
    assert_eq!(decide(&human, &at(Step::Dial), &f, ended), Decision::default());
    let spoken = event("call.speak.ended", Payload::default());
    assert_eq!(decide(&spoken, &at(Step::OptedOut), &f, ended), Decision::default());
}
