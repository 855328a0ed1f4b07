//! Every TwiML branch as the exact document, and the decisions behind them.

use super::*;

const H: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

fn hooks() -> Hooks<'static> {
    Hooks { public_url: "https://d.example.com", attempt_id: 42 }
}

#[test]
fn machine_and_terminal_documents() {
    assert_eq!(empty(), format!("{H}<Response/>"));
    assert_eq!(hangup(), format!("{H}<Response><Hangup/></Response>"));
    assert_eq!(
        voicemail(Some("Call us back at 555 & ask for <Sam>.")),
        format!("{H}<Response><Say>Call us back at 555 &amp; ask for &lt;Sam&gt;.</Say><Hangup/></Response>")
    );
    assert_eq!(voicemail(None), format!("{H}<Response><Hangup/></Response>"));
    assert_eq!(
        opted_out(),
        format!("{H}<Response><Say>You have been removed from our list. Goodbye.</Say><Hangup/></Response>")
    );
    assert_eq!(goodbye(), format!("{H}<Response><Say>Goodbye.</Say><Hangup/></Response>"));
    assert_eq!(after_dial(true), format!("{H}<Response><Hangup/></Response>"));
    assert_eq!(
        after_dial(false),
        format!("{H}<Response><Say>Sorry, no one is available to take your call. Goodbye.</Say><Hangup/></Response>")
    );
}

#[test]
fn message_inside_a_one_digit_gather_with_say_or_play() {
    let action = "https://d.example.com/webhooks/twilio/gather?attempt_id=42&amp;round=1";
    assert_eq!(
        message(Speech::Say("Hi \"Ann\", it's us."), &hooks(), 1),
        format!(
            "{H}<Response><Gather input=\"dtmf\" numDigits=\"1\" timeout=\"5\" action=\"{action}\" method=\"POST\">\
             <Say>Hi &quot;Ann&quot;, it&apos;s us.</Say></Gather><Redirect method=\"POST\">{action}</Redirect></Response>"
        )
    );
    let action2 = "https://d.example.com/webhooks/twilio/gather?attempt_id=42&amp;round=2";
    assert_eq!(
        message(Speech::Play("https://cdn.example.com/m.mp3?a=1&b=2"), &hooks(), 2),
        format!(
            "{H}<Response><Gather input=\"dtmf\" numDigits=\"1\" timeout=\"5\" action=\"{action2}\" method=\"POST\">\
             <Play>https://cdn.example.com/m.mp3?a=1&amp;b=2</Play></Gather>\
             <Redirect method=\"POST\">{action2}</Redirect></Response>"
        )
    );
}

#[test]
fn transfer_dials_the_agent_with_the_chosen_caller_id() {
    assert_eq!(
        transfer("+12025550101", "+14152370100", &hooks()),
        format!(
            "{H}<Response><Say>Connecting you now.</Say><Dial callerId=\"+12025550101\" timeout=\"20\" \
             action=\"https://d.example.com/webhooks/twilio/dial?attempt_id=42\" method=\"POST\">+14152370100</Dial>\
             </Response>"
        )
    );
}

#[test]
fn answered_by_decides_the_branch() {
    for beep in ["machine_end_beep", "machine_end_silence", "machine_end_other"] {
        assert_eq!(Answer::of(Some(beep)), Answer::MachineAfterBeep, "{beep}");
    }
    assert_eq!(Answer::of(Some("machine_start")), Answer::MachineStart);
    assert_eq!(Answer::of(Some("fax")), Answer::Fax);
    for person in [Some("human"), Some("unknown"), None, Some(""), Some("something_new")] {
        assert_eq!(Answer::of(person), Answer::Person, "{person:?}");
    }
}

#[test]
fn key_presses_decide_what_follows() {
    assert_eq!(pressed(Some("1"), 1, true), Pressed::Transfer);
    assert_eq!(pressed(Some("1"), 2, true), Pressed::Transfer);
    assert_eq!(pressed(Some("1"), 1, false), Pressed::Repeat, "no agent: 1 is any other key");
    assert_eq!(pressed(Some("2"), 1, false), Pressed::OptOut);
    assert_eq!(pressed(Some("2"), 2, true), Pressed::OptOut);
    assert_eq!(pressed(None, 1, true), Pressed::Repeat);
    assert_eq!(pressed(Some(""), 1, true), Pressed::Repeat);
    assert_eq!(pressed(Some("7"), 1, true), Pressed::Repeat);
    assert_eq!(pressed(None, 2, true), Pressed::Goodbye);
    assert_eq!(pressed(Some("9"), 2, true), Pressed::Goodbye);
    assert_eq!(pressed(Some("1"), 2, false), Pressed::Goodbye);
}

#[test]
fn dial_call_status_connected_or_not() {
    assert!(dial_connected("completed") && dial_connected("answered"));
    for no in ["busy", "no-answer", "failed", "canceled", ""] {
        assert!(!dial_connected(no), "{no}");
    }
}
