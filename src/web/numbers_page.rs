//! The Numbers page: caller numbers with today's usage, health, bulk actions, adding
//! by paste or CSV, reputation scores, capacity planning, and one number's history.
//! Plain HTML forms; the JSON API (`web::numbers`) offers the same operations.

use askama::Template;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use crate::db::number_admin::{self, NumberEvent};
use crate::dialer::claim::local_day;
use crate::numbers::edit::{self, Rejection};
use crate::numbers::plan::{self, Plan};
use crate::state::AppState;
use crate::web::dashboard::render;
use crate::web::forms;
use crate::web::numbers::{self as api, NumberView, view, views};
use crate::web::status::{Snapshot, snapshot};
use crate::web::{AppError, api::parse_query, local};

#[derive(Template)]
#[template(path = "numbers.html")]
struct NumbersPage {
    status: Snapshot,
    numbers: Vec<NumberView>,
    day: String,
    timezone: String,
    local_presence: String,
    capacity: u32,
    active: usize,
    message: Option<String>,
    rejections: Vec<Rejection>,
    plan: Option<(Plan, String)>,
    calls_per_day: String,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    msg: Option<String>,
    calls_per_day: Option<String>,
}

pub async fn page(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    let q: PageQuery = parse_query(raw)?;
    render_page(&state, q.msg, Vec::new(), q.calls_per_day.unwrap_or_default()).await
}

async fn render_page(
    state: &AppState,
    message: Option<String>,
    rejections: Vec<Rejection>,
    calls_per_day: String,
) -> Result<Response, AppError> {
    let (numbers, day) = views(state).await?;
    let dialing: Vec<&NumberView> =
        numbers.iter().filter(|n| n.row.rotation_enabled && n.row.status == "active").collect();
    let capacity: u32 = dialing.iter().map(|n| n.effective_cap).sum();
    let r = &state.config.rotation;
    let (plan, message) = match calls_per_day.trim() {
        "" => (None, message),
        s => match s
            .replace(',', "")
            .parse::<u32>()
            .map_err(|_| "calls per day: a whole number".to_string())
            .and_then(|n| plan::plan(n, 100, 25, r.warmup(), &r.policy()))
        {
            Ok(p) => {
                let summary = plan::shortfall(&p, capacity, dialing.len() as u32);
                (Some((p, summary)), message)
            }
            Err(e) => (None, Some(e)),
        },
    };
    render(&NumbersPage {
        status: snapshot(state).await?,
        active: dialing.len(),
        numbers,
        day,
        timezone: state.resolved.timezone.name().to_string(),
        local_presence: format!("{:?}", r.local_presence).to_lowercase(),
        capacity,
        message,
        rejections,
        plan,
        calls_per_day,
    })
}

/// `POST /numbers/add`: a pasted list (`numbers`) and/or a CSV file (`file`).
pub async fn add(State(state): State<AppState>, multipart: Multipart) -> Result<Response, AppError> {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (name, text) in forms::multipart_fields(multipart).await? {
        if (name == "numbers" || name == "file") && !text.trim().is_empty() {
            let (g, b) = edit::parse_numbers(&text, state.resolved.region);
            good.extend(g);
            bad.extend(b.into_iter().map(|r| Rejection { field: format!("{name}: {}", r.field), ..r }));
        }
    }
    if good.is_empty() && bad.is_empty() {
        return render_page(
            &state,
            Some("Nothing to add: paste numbers or choose a CSV file.".into()),
            bad,
            String::new(),
        )
        .await;
    }
    let (added, existing) = api::add_numbers(&state, good, "user").await?;
    let message =
        format!("Added {} number(s); {} already listed; {} line(s) rejected.", added.len(), existing.len(), bad.len());
    render_page(&state, Some(message), bad, String::new()).await
}

/// `POST /numbers/scores`: a reputation service's CSV (`number,spam_score[,source]`).
pub async fn scores(State(state): State<AppState>, multipart: Multipart) -> Result<Response, AppError> {
    let text = forms::value(&forms::multipart_fields(multipart).await?, "file");
    let (updated, unknown, bad) = api::import_scores(&state, &text, "user").await?;
    let message = format!(
        "Scores imported for {updated} number(s); {} not in the pool; {} line(s) rejected.",
        unknown.len(),
        bad.len()
    );
    render_page(&state, Some(message), bad, String::new()).await
}

/// `POST /numbers/bulk`: form fields `ids` (repeated), `action`, `value`, `reason`,
/// and `back` (where to return: the list or one number's page).
pub async fn bulk(State(state): State<AppState>, body: String) -> Result<Response, AppError> {
    let pairs = forms::pairs(&body)?;
    let get = |k: &str| forms::value(&pairs, k);
    let ids: Vec<i64> = pairs.iter().filter(|(n, _)| n == "ids").filter_map(|(_, v)| v.parse().ok()).collect();
    let back = match get("back").parse::<i64>() {
        Ok(id) => format!("/numbers/{id}"),
        Err(_) => "/numbers".to_string(),
    };
    let message = match api::bulk_change(&state, &ids, &get("action"), &get("value")) {
        Ok(change) => {
            let n = api::apply(&state, ids, change, get("reason"), "user").await?;
            format!("Updated {n} number(s).")
        }
        Err(AppError::Unprocessable(e)) => e,
        Err(e) => return Err(e),
    };
    let query = serde_urlencoded::to_string([("msg", message)]).unwrap_or_default();
    Ok(Redirect::to(&format!("{back}?{query}")).into_response())
}

#[derive(Template)]
#[template(path = "number.html")]
struct NumberPage {
    status: Snapshot,
    n: NumberView,
    history: Vec<(String, NumberEvent)>,
    rest_until: String,
    message: Option<String>,
}

pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let q: PageQuery = parse_query(raw)?;
    let now = Utc::now();
    let tz = state.resolved.timezone;
    let day = local_day(tz, now);
    let (row, history) =
        state.db.read(move |c| Ok((number_admin::get(c, id, &day)?, number_admin::events(c, id, 500)?))).await?;
    let n = view(&state, row.ok_or(AppError::NotFound)?, now.with_timezone(&tz).date_naive());
    render(&NumberPage {
        status: snapshot(&state).await?,
        rest_until: n.row.rest_until.map(|ms| local(ms, tz)).unwrap_or_default(),
        history: history.into_iter().map(|e| (local(e.at, tz), e)).collect(),
        n,
        message: q.msg,
    })
}
