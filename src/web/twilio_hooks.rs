//! The Twilio call flow's webhooks: `voice` (the answered call asks what to do),
//! `gather` (a key or none after the message), `dial` (how the transfer to the agent
//! ended), `amd` (the async AMD verdict) and `voicemail` (the drop an async machine
//! verdict redirects to). Each is verified like the status callback (403, nothing
//! stored), names its attempt in the query (`?attempt_id=N`), and answers TwiML
//! built by `provider::twilio::twiml`. The status callback stays in `webhooks`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use crate::calls;
use crate::campaigns::Checked;
use crate::db::{self, call_flow::FlowAttempt};
use crate::provider::twilio::twiml::{self, Answer, Hooks, Pressed, Speech};
use crate::state::AppState;
use crate::web::AppError;
use crate::web::api::parse_query;
use crate::web::webhooks::{param, verify};

#[derive(Deserialize)]
struct FlowQuery {
    attempt_id: Option<i64>,
    /// Which run of the message a gather answers (1 or 2); absent = 1.
    round: Option<u8>,
}

/// One verified call-flow request: its form, its attempt and the attempt's campaign
/// settings (defaults if the campaign is gone).
struct Hook {
    params: Vec<(String, String)>,
    attempt: FlowAttempt,
    flow: Checked,
    round: u8,
}

impl Hook {
    /// Verifies the signature, then finds the attempt. Unknown attempt → 404, a
    /// `CallSid` that is not the attempt's call → 400; nothing is written either way.
    async fn open(
        state: &AppState,
        kind: &str,
        raw: Option<String>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Hook, AppError> {
        let params = verify(state, &format!("/webhooks/twilio/{kind}"), &raw, headers, body)?;
        let query: FlowQuery = parse_query(raw)?;
        let attempt_id = query.attempt_id.ok_or_else(|| AppError::BadRequest("attempt_id missing".into()))?;
        let round = query.round.unwrap_or(1);
        if !(1..=2).contains(&round) {
            return Err(AppError::BadRequest(format!("round: {round} is not 1 or 2")));
        }
        let found = state
            .db
            .read(move |c| {
                let Some(attempt) = db::call_flow::get(c, attempt_id)? else { return Ok(None) };
                let flow = db::campaigns::checked(c, attempt.campaign_id)?.map(|(_, s)| s).unwrap_or_default();
                Ok(Some((attempt, flow)))
            })
            .await?;
        let (attempt, flow) = found.ok_or(AppError::NotFound)?;
        if let (Some(stored), Some(sid)) = (attempt.provider_call_id.as_deref(), param(&params, "CallSid"))
            && stored != sid
        {
            return Err(AppError::BadRequest("CallSid does not match the attempt's call".into()));
        }
        Ok(Hook { params, attempt, flow, round })
    }

    fn param(&self, key: &str) -> Option<&str> {
        param(&self.params, key)
    }

    fn hooks<'a>(&self, state: &'a AppState) -> Hooks<'a> {
        Hooks { public_url: &state.public_url, attempt_id: self.attempt.id }
    }

    /// The campaign's message: its recording, its text, else `dialing.message`.
    fn message(&self, state: &AppState, round: u8) -> String {
        let speech = match (&self.flow.message_audio_url, &self.flow.message) {
            (Some(url), _) => Speech::Play(url),
            (None, Some(text)) => Speech::Say(text),
            (None, None) => Speech::Say(&state.config.dialing.message),
        };
        twiml::message(speech, &self.hooks(state), round)
    }
}

fn twiml_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// `POST /webhooks/twilio/voice?attempt_id=N`: the call was answered. By `AnsweredBy`:
/// a person (or unknown, or no AMD) hears the message in a Gather; a machine after
/// its greeting gets the voicemail drop; `machine_start` and `fax` are hung up on.
pub async fn voice(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let hook = Hook::open(&state, "voice", raw, &headers, &body).await?;
    let answered_by = hook.param("AnsweredBy").map(String::from);
    let answer = Answer::of(answered_by.as_deref());
    let (attempt_id, call_id) = (hook.attempt.id, hook.param("CallSid").map(String::from));
    let now_ms = db::to_ms(Utc::now());
    let recorded = state
        .db
        .write(move |tx| {
            if let Some(by) = &answered_by {
                db::call_flow::set_answered_by(tx, attempt_id, by)?;
            }
            // The message reaches a person now (`connected_at`, for abandonment); a
            // machine is no live answer.
            if let (Answer::Person, Some(call_id)) = (answer, call_id) {
                db::pacing::set_connected(tx, attempt_id, &call_id, now_ms)?;
            }
            Ok(())
        })
        .await;
    if let Err(e) = recorded {
        // Someone is on the line: answer the call even if the record is lost.
        tracing::error!(attempt_id, error = format!("{e:#}"), "recording the answer failed");
    }
    let twiml = match answer {
        Answer::Person => hook.message(&state, 1),
        Answer::MachineAfterBeep => twiml::voicemail(hook.flow.voicemail_message.as_deref()),
        Answer::MachineStart | Answer::Fax => twiml::hangup(),
    };
    Ok(twiml_response(twiml))
}

/// Keypad input as Twilio sends it: digits, `*`, `#` (at most a few; we ask for one).
fn keypad(digits: &str) -> bool {
    digits.len() <= 8 && digits.bytes().all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

/// `POST /webhooks/twilio/gather?attempt_id=N&round=K`: what the person pressed
/// (`Digits`), or nothing (the Redirect after the Gather timed out). 1 → transfer
/// to the agent; 2 → DNC at once, then the confirmation; else the message once more,
/// then goodbye.
pub async fn gather(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let hook = Hook::open(&state, "gather", raw, &headers, &body).await?;
    let digits = hook.param("Digits").map(String::from);
    if let Some(d) = &digits
        && !keypad(d)
    {
        return Err(AppError::BadRequest("Digits: not keypad input".into()));
    }
    let step = twiml::pressed(digits.as_deref(), hook.round, hook.flow.agent_number.is_some());
    let now_ms = db::to_ms(Utc::now());
    let attempt = hook.attempt.clone();
    // Written before the reply: a confirmation is never said for an opt-out not saved
    // (an error here is a 500, and Twilio says its application error instead).
    state
        .db
        .write(move |tx| match (step, &digits) {
            (Pressed::OptOut, _) => {
                let new = db::call_flow::opt_out(tx, &attempt, now_ms)?;
                tracing::info!(attempt_id = attempt.id, new, "keypad opt-out saved");
                Ok(())
            }
            (_, Some(d)) => db::call_flow::set_digits(tx, attempt.id, d),
            (_, None) => Ok(()),
        })
        .await?;
    let twiml = match (step, hook.flow.agent_number.as_deref()) {
        (Pressed::Transfer, Some(agent)) => {
            let caller_id = hook.flow.transfer_caller_id.pick(&hook.attempt.caller_number, &hook.attempt.to_number);
            twiml::transfer(caller_id, agent, &hook.hooks(&state))
        }
        // `pressed` only transfers when there is an agent; without one, say goodbye.
        (Pressed::Transfer, None) => twiml::goodbye(),
        (Pressed::OptOut, _) => twiml::opted_out(),
        (Pressed::Repeat, _) => hook.message(&state, 2),
        (Pressed::Goodbye, _) => twiml::goodbye(),
    };
    Ok(twiml_response(twiml))
}

/// `POST /webhooks/twilio/dial?attempt_id=N`: the agent leg ended (`DialCallStatus`,
/// `DialCallDuration`). The transfer result is stored; the final `completed` of a
/// call whose transfer failed becomes `transfer_failed` (`calls::outcome`).
pub async fn dial(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let hook = Hook::open(&state, "dial", raw, &headers, &body).await?;
    let status = hook.param("DialCallStatus").ok_or_else(|| AppError::BadRequest("DialCallStatus missing".into()))?;
    let connected = twiml::dial_connected(status);
    let seconds = hook.param("DialCallDuration").and_then(|d| d.parse::<i64>().ok());
    let attempt_id = hook.attempt.id;
    let result = if connected { "connected" } else { "failed" };
    state.db.write(move |tx| db::call_flow::set_transfer(tx, attempt_id, result, seconds)).await?;
    tracing::info!(attempt_id, dial_call_status = status, "transfer {result}");
    Ok(twiml_response(twiml::after_dial(connected)))
}

/// `POST /webhooks/twilio/amd?attempt_id=N` (async AMD): the verdict arrives while the
/// message plays. It is stored; a machine after its greeting is redirected to the
/// voicemail drop (Modify Call `Url`), or hung up on when the campaign has no
/// voicemail message; a fax or `machine_start` is hung up on (`Status=completed`).
/// A verdict that comes after a person pressed a key (digits or a transfer result
/// stored) is only stored: the call is not touched, so a live transfer is not torn
/// down and an opt-out confirmation is not followed by the voicemail drop.
/// The Modify Call runs in the background so this reply does not wait on the provider.
pub async fn amd(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let hook = Hook::open(&state, "amd", raw, &headers, &body).await?;
    let answered_by =
        hook.param("AnsweredBy").ok_or_else(|| AppError::BadRequest("AnsweredBy missing".into()))?.to_string();
    let call_id = hook
        .param("CallSid")
        .map(String::from)
        .or(hook.attempt.provider_call_id.clone())
        .ok_or_else(|| AppError::BadRequest("CallSid missing".into()))?;
    let attempt_id = hook.attempt.id;
    let by = answered_by.clone();
    // The verdict is stored, and in the same transaction (after any gather or dial
    // webhook already written) we learn whether a person has pressed a key or been
    // transferred: then the verdict is late and wrong, and the call is left alone.
    let interacted = state
        .db
        .write(move |tx| {
            db::call_flow::set_answered_by(tx, attempt_id, &by)?;
            Ok(db::call_flow::get(tx, attempt_id)?
                .is_some_and(|a| calls::person_interacted(a.digits.as_deref(), a.transfer_result.as_deref())))
        })
        .await?;
    let voicemail_url = hook.hooks(&state).url("voicemail");
    let action = match Answer::of(Some(&answered_by)) {
        Answer::Person => None,
        _ if interacted => {
            tracing::info!(attempt_id, %answered_by, "AMD verdict after a key press: stored, the call is left alone");
            None
        }
        Answer::MachineAfterBeep if hook.flow.voicemail_message.is_some() => Some(Some(voicemail_url)),
        Answer::MachineAfterBeep | Answer::MachineStart | Answer::Fax => Some(None),
    };
    if let Some(redirect) = action {
        let provider = state.provider.clone();
        tokio::spawn(async move {
            let done = match &redirect {
                Some(url) => provider.redirect_call(&call_id, url).await,
                None => provider.hang_up(&call_id).await,
            };
            if let Err(e) = done {
                // The call may have ended meanwhile; the verdict is stored either way.
                tracing::warn!(attempt_id, %call_id, error = %e, "modifying the call after the AMD verdict failed");
            }
        });
    }
    Ok(twiml_response(twiml::empty()))
}

/// `POST /webhooks/twilio/voicemail?attempt_id=N`: where an async machine verdict
/// redirects the call: the voicemail message, then hang up.
pub async fn voicemail(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let hook = Hook::open(&state, "voicemail", raw, &headers, &body).await?;
    Ok(twiml_response(twiml::voicemail(hook.flow.voicemail_message.as_deref())))
}
