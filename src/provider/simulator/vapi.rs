//! The simulator's Vapi API.

use axum::Router;

use crate::provider::simulator::Sim;

pub fn routes() -> Router<Sim> {
    Router::new()
}
