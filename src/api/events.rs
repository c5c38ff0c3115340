//! `/api/v1/events`: a live feed of reports as server-sent events, for the map wall and
//! operation-centre screens. A listener first gets the latest reports, then every report
//! created and every lifecycle step as it is committed, and a `version` event whenever the
//! data changed in any other way (a batch import), so dashboards know to refresh.
//!
//! Callers with an operator, analyst or admin key see locations and descriptions; everyone
//! else (when public reading is on) sees what, when and which street, never where exactly.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::QueryParams;
use crate::grid::code::GridCode;
use crate::report::{CategoryId, Channel, ReportId, Status};
use crate::store::events::{CreatedReport, ReportEvent};
use crate::store::keys::Role;
use crate::store::query::{self, ReportFilter};
use crate::store::record::{Placement, ReportRecord};

/// Options of the feed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// How many of the latest reports to send first (default 20, at most 200).
    pub backlog: Option<usize>,
}

/// How much of a report a listener may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// Location, description and every grid.
    Full,
    /// Category, channel, times, district and street only.
    Public,
}

impl View {
    fn name(self) -> &'static str {
        match self {
            View::Full => "full",
            View::Public => "public",
        }
    }
}

/// The parts of a report the feed shows, whichever way it was learnt of.
struct FeedReport<'a> {
    id: ReportId,
    status: Status,
    channel: Channel,
    category: CategoryId,
    description: &'a str,
    lon: f64,
    lat: f64,
    reported_at: chrono::DateTime<chrono::Utc>,
    deadline: chrono::DateTime<chrono::Utc>,
    placement: &'a Placement,
}

impl<'a> From<&'a CreatedReport> for FeedReport<'a> {
    fn from(r: &'a CreatedReport) -> Self {
        Self {
            id: r.id,
            status: Status::Reported,
            channel: r.channel,
            category: r.category,
            description: &r.description,
            lon: r.lon,
            lat: r.lat,
            reported_at: r.reported_at,
            deadline: r.deadline,
            placement: &r.placement,
        }
    }
}

impl<'a> From<&'a ReportRecord> for FeedReport<'a> {
    fn from(r: &'a ReportRecord) -> Self {
        Self {
            id: r.id,
            status: r.status,
            channel: r.channel,
            category: r.category,
            description: &r.description,
            lon: r.lon,
            lat: r.lat,
            reported_at: r.reported_at,
            deadline: r.deadline,
            placement: &r.placement,
        }
    }
}

/// `{"code", "name"}` of a grid, or null.
fn grid_ref(state: &AppState, code: Option<&str>) -> Value {
    let grids = state.in_force();
    let set = grids.set();
    code.and_then(|c| GridCode::parse(c).ok())
        .and_then(|c| set.id_of(&c))
        .map_or(Value::Null, |id| {
            let g = set.grid(id);
            json!({"code": g.code.as_str(), "name": g.name})
        })
}

/// The JSON of one report in the feed, as much as `view` allows.
fn report_json(state: &AppState, r: &FeedReport<'_>, view: View) -> Value {
    let class = state.catalog.get(r.category);
    let p = r.placement;
    let mut v = json!({
        "id": r.id.0,
        "status": r.status,
        "channel": r.channel,
        "category": r.category.to_string(),
        "category_name": class.map(|c| c.name.as_str()),
        "major_name": class.map(|c| c.major_name.as_str()),
        "reported_at": r.reported_at,
        "deadline": r.deadline,
        "district": grid_ref(state, p.district.as_deref()),
        "street": grid_ref(state, p.grid_l1.as_deref()),
    });
    if view == View::Full {
        v["community"] = grid_ref(state, p.grid_l2.as_deref());
        v["grid"] = grid_ref(state, p.grid_l3.as_deref());
        v["lon"] = json!(r.lon);
        v["lat"] = json!(r.lat);
        v["description"] = json!(r.description);
    }
    v
}

fn event(name: &str, id: Option<i64>, data: &Value) -> Event {
    let e = Event::default().event(name).data(data.to_string());
    match id {
        Some(id) => e.id(id.to_string()),
        None => e,
    }
}

/// What a listener is sent for one committed change.
fn live_event(state: &AppState, e: &ReportEvent, view: View) -> Event {
    match e {
        ReportEvent::Created(r) => {
            let r = r.as_ref();
            event(
                "report",
                Some(r.id.0),
                &report_json(state, &FeedReport::from(r), view),
            )
        }
        ReportEvent::Transitioned { id, from, to, at } => event(
            "transition",
            Some(id.0),
            &json!({"id": id.0, "from": from, "to": to, "at": at}),
        ),
    }
}

/// Live reports and lifecycle steps as server-sent events.
///
/// Events: `hello` (`{"view": "full"|"public", "data_version"}`), then one `report` per recent
/// report (oldest first, `backlog` of them), then as they are committed: `report` (a new
/// report), `transition` (`{"id", "from", "to", "at"}`), `version` (`{"data_version"}`: data
/// changed otherwise, e.g. a batch import), `grids` (`{"grid_version"}`: a new grid version is
/// in force; reload grid tiles and lists) and `lagged` (`{"missed"}`: this listener fell
/// behind; refresh). Comments keep the connection alive every 15 s.
#[utoipa::path(get, path = "/api/v1/events", tag = "reports",
    params(FeedQuery),
    responses((status = 200, description = "server-sent events", content_type = "text/event-stream"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn feed(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(q): QueryParams<FeedQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let view = match &caller {
        Caller::Key(p) if p.key.role != Role::Reporter => View::Full,
        _ => {
            caller.may_read_public(&state)?;
            View::Public
        }
    };
    let backlog = q.backlog.unwrap_or(20);
    if backlog > 200 {
        return Err(ApiError::invalid("backlog", "at most 200"));
    }
    // Subscribe before reading the backlog so nothing committed in between is missed.
    let rx = state.store.subscribe();
    let version = state.store.data_version();
    let grids = state.grids.load().version();
    let latest = state
        .store
        .read_async(move |c| query::list(c, &ReportFilter::default(), None, backlog))
        .await?;
    let mut first = vec![event(
        "hello",
        None,
        &json!({"view": view.name(), "data_version": version, "grid_version": format!("{grids:016x}")}),
    )];
    first.extend(latest.reports.iter().rev().map(|r| {
        event(
            "report",
            Some(r.id.0),
            &report_json(&state, &FeedReport::from(r), view),
        )
    }));
    let ticker = tokio::time::interval(Duration::from_secs(1));
    let closing = state.closing.subscribe();
    let live = stream::unfold(
        (rx, ticker, state, (version, grids), closing),
        move |(mut rx, mut ticker, state, (mut version, mut grids), mut closing)| async move {
            let next = loop {
                if *closing.borrow() {
                    return None;
                }
                tokio::select! {
                    _ = closing.changed() => return None,
                    got = rx.recv() => break match got {
                        Ok(e) => {
                            version = version.max(state.store.data_version());
                            live_event(&state, &e, view)
                        }
                        Err(RecvError::Lagged(n)) => event("lagged", None, &json!({"missed": n})),
                        Err(RecvError::Closed) => return None,
                    },
                    _ = ticker.tick() => {
                        let in_force = state.grids.load().version();
                        if in_force != grids {
                            grids = in_force;
                            break event("grids", None, &json!({"grid_version": format!("{grids:016x}")}));
                        }
                        let now = state.store.data_version();
                        if now != version {
                            version = now;
                            break event("version", None, &json!({"data_version": now}));
                        }
                    }
                }
            };
            Some((Ok(next), (rx, ticker, state, (version, grids), closing)))
        },
    );
    let all = stream::iter(first.into_iter().map(Ok)).chain(live);
    Ok(Sse::new(all).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
