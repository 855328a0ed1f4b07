//! Pacing (ours): calls per minute per campaign, live metrics, recommendations and
//! the optional auto-adjust. Pure.
