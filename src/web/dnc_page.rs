//! The DNC page: search the list, add numbers by paste or CSV, remove one with a
//! reason, and read a number's audit history. The JSON API (`web::dnc`) offers the
//! same operations.

use askama::Template;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::db::dnc::{self, Entry, Event};
use crate::numbers::edit::Rejection;
use crate::state::AppState;
use crate::web::api::parse_query;
use crate::web::dashboard::render;
use crate::web::forms;
use crate::web::status::{Snapshot, snapshot};
use crate::web::{AppError, local};

use crate::web::dnc::{PAGE_SIZE, add_entries, check_reason, lookup_phone, parse_list, remove_number};

#[derive(Template)]
#[template(path = "dnc.html")]
struct DncPage {
    status: Snapshot,
    /// (added at, local time; entry)
    entries: Vec<(String, Entry)>,
    /// Entries matching the search, and on the whole list.
    total: i64,
    listed: i64,
    q: String,
    next_href: Option<String>,
    message: Option<String>,
    rejections: Vec<Rejection>,
    /// The latest changes to the list: (when, local time; event).
    recent: Vec<(String, Event)>,
    /// On `/dnc/{phone}`: that number and its whole audit history.
    number: Option<NumberHistory>,
}

struct NumberHistory {
    phone: String,
    listed: bool,
    events: Vec<(String, Event)>,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    q: Option<String>,
    cursor: Option<i64>,
    msg: Option<String>,
}

/// `GET /dnc`.
pub async fn page(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    let q: PageQuery = parse_query(raw)?;
    render_page(&state, q.q.unwrap_or_default(), q.cursor, q.msg, Vec::new(), None).await
}

/// `GET /dnc/{phone}`: the page searched for that number, with its audit history.
pub async fn detail(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let q: PageQuery = parse_query(query)?;
    let phone = lookup_phone(&raw, state.resolved.region).map_err(|_| AppError::NotFound)?;
    let tz = state.resolved.timezone;
    let p = phone.clone();
    let (listed, events) = state.db.read(move |c| Ok((dnc::contains(c, &p)?, dnc::events(c, &p, 1_000)?))).await?;
    if !listed && events.is_empty() {
        return Err(AppError::NotFound);
    }
    let number = NumberHistory {
        phone: phone.clone(),
        listed,
        events: events.into_iter().map(|e| (local(e.at, tz), e)).collect(),
    };
    render_page(&state, phone, None, q.msg, Vec::new(), Some(number)).await
}

async fn render_page(
    state: &AppState,
    q: String,
    cursor: Option<i64>,
    message: Option<String>,
    rejections: Vec<Rejection>,
    number: Option<NumberHistory>,
) -> Result<Response, AppError> {
    let tz = state.resolved.timezone;
    let search = q.clone();
    let (rows, next, total, listed, recent) = state
        .db
        .read(move |c| {
            let q = Some(search.as_str());
            let (rows, next) = dnc::page(c, q, PAGE_SIZE, cursor)?;
            Ok((rows, next, dnc::count(c, q)?, dnc::count(c, None)?, dnc::recent_events(c, 20)?))
        })
        .await?;
    let next_href = next.map(|cursor| {
        let query = serde_urlencoded::to_string([("q", q.clone()), ("cursor", cursor.to_string())]).unwrap_or_default();
        format!("/dnc?{query}")
    });
    render(&DncPage {
        status: snapshot(state).await?,
        entries: rows.into_iter().map(|e| (local(e.created_at, tz), e)).collect(),
        total,
        listed,
        q,
        next_href,
        message,
        rejections,
        recent: recent.into_iter().map(|e| (local(e.at, tz), e)).collect(),
        number,
    })
}

/// `POST /dnc/add`: a pasted list (`numbers`) and/or a CSV file (`file`), with a
/// `reason` for lines that carry none.
pub async fn page_add(State(state): State<AppState>, multipart: Multipart) -> Result<Response, AppError> {
    let form = forms::multipart_fields(multipart).await?;
    let reason = forms::value(&form, "reason");
    let reason = match check_reason(&reason) {
        Ok(r) => r,
        Err(e) => {
            return render_page(&state, String::new(), None, Some(format!("Reason: {e}.")), Vec::new(), None).await;
        }
    };
    let region = state.resolved.region;
    let (good, bad) = tokio::task::spawn_blocking(move || {
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for (name, text) in form {
            if (name == "numbers" || name == "file") && !text.trim().is_empty() {
                let (g, b) = parse_list(&text, region, &reason);
                good.extend(g);
                bad.extend(b.into_iter().map(|r| Rejection { field: format!("{name}: {}", r.field), ..r }));
            }
        }
        (good, bad)
    })
    .await
    .map_err(anyhow::Error::from)?;
    if good.is_empty() && bad.is_empty() {
        let message = "Nothing to add: paste numbers or choose a CSV file.".to_string();
        return render_page(&state, String::new(), None, Some(message), bad, None).await;
    }
    let counts = add_entries(&state, good, "dashboard".into(), "user").await?;
    let message = format!(
        "Added {} number(s); {} already listed; {} line(s) rejected; {} lead(s) marked do_not_call.",
        counts.added,
        counts.existing,
        bad.len(),
        counts.leads_marked
    );
    render_page(&state, String::new(), None, Some(message), bad, None).await
}

/// `POST /dnc/remove`: form fields `phone`, `reason` (required: it is kept in the
/// audit history) and `back` (`number` to return to the number's page).
pub async fn page_remove(State(state): State<AppState>, body: String) -> Result<Response, AppError> {
    let pairs = forms::pairs(&body)?;
    let get = |k: &str| forms::value(&pairs, k);
    let phone = lookup_phone(&get("phone"), state.resolved.region)?;
    let message = match check_reason(&get("reason")) {
        Ok(reason) if reason.is_empty() => "Removing a number needs a reason (it is kept in the audit history).".into(),
        Ok(reason) => match remove_number(&state, phone.clone(), reason, "user").await? {
            true => format!("Removed {phone} from the do-not-call list."),
            false => format!("{phone} is not on the do-not-call list."),
        },
        Err(e) => format!("Reason: {e}."),
    };
    let query = serde_urlencoded::to_string([("msg", message)]).unwrap_or_default();
    let back = if get("back") == "number" { format!("/dnc/{phone}") } else { "/dnc".to_string() };
    Ok(Redirect::to(&format!("{back}?{query}")).into_response())
}
