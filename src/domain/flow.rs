//! What a call does once answered: the campaign's call-flow choices shared by every
//! provider (Twilio TwiML, Telnyx commands, Vapi assistant).

use serde::{Deserialize, Serialize};

/// Answering-machine detection, as a campaign configures it.
///
/// Twilio: `Enable` → `MachineDetection=Enable` (verdict `human`, `machine_start`,
/// `fax`, `unknown`); `DetectMessageEnd` → `MachineDetection=DetectMessageEnd` (the
/// `machine_end_*` verdicts arrive after the greeting, so a voicemail is left after
/// the beep); `Async` → `DetectMessageEnd` with `AsyncAmd=true` and
/// `AsyncAmdStatusCallback` (the message starts at once; the verdict arrives by
/// callback). Source: providers.md §1.2, §1.7. Telnyx: `detect` / `detect_beep`
/// (providers.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AmdMode {
    /// No detection: every answered call hears the message.
    Off,
    Enable,
    #[default]
    DetectMessageEnd,
    Async,
}

impl AmdMode {
    pub const ALL: [AmdMode; 4] = [AmdMode::Off, AmdMode::Enable, AmdMode::DetectMessageEnd, AmdMode::Async];

    pub fn as_str(self) -> &'static str {
        match self {
            AmdMode::Off => "off",
            AmdMode::Enable => "enable",
            AmdMode::DetectMessageEnd => "detect_message_end",
            AmdMode::Async => "async",
        }
    }

    pub fn parse(s: &str) -> Option<AmdMode> {
        AmdMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}
