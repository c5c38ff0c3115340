//! Governance KPIs (DESIGN.md §1) per grid of one level, from counts over the stored reports.
//!
//! Definitions, for the reports reported inside a time window (and matching any category or
//! channel filter):
//!
//! | KPI | definition |
//! |---|---|
//! | reports | reports received |
//! | 立案率 acceptance rate | accepted (立案) / reports |
//! | due (应结案) | accepted reports that are closed, or whose deadline has passed |
//! | 结案率 closure rate | closed / due |
//! | 按期结案率 on-time closure rate | closed no later than their deadline / due |
//! | 满意率 satisfaction rate | rated satisfied or basically satisfied / rated |
//! | 返工率 rework rate | reports reworked at least once / closed |
//! | 延期率 extension rate | reports extended at least once / accepted |
//! | overdue | open (not closed, not rejected) past their deadline, now |
//!
//! A rate whose denominator is zero is absent, not zero.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use duckdb::Connection;
use duckdb::types::Value;

use crate::grid::code::Level;
use crate::store::StoreError;
use crate::store::query::{ReportFilter, filtered_row, grouped_counts};

/// The counts behind the KPIs of one grid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KpiCounts {
    /// Reports received.
    pub reports: u64,
    /// Accepted (立案).
    pub accepted: u64,
    /// Due for closure: accepted and closed or past their deadline.
    pub due: u64,
    /// Closed.
    pub closed: u64,
    /// Closed no later than their deadline.
    pub closed_on_time: u64,
    /// Rated by the reporter.
    pub rated: u64,
    /// Rated satisfied or basically satisfied.
    pub satisfied: u64,
    /// Reworked at least once.
    pub reworked: u64,
    /// Extended at least once.
    pub extended: u64,
    /// Open past their deadline now.
    pub overdue: u64,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl KpiCounts {
    /// The counts from the values of [`KPI_AGGREGATES`], in order (missing ones are 0).
    fn from_values(v: &[u64]) -> Self {
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Self {
            reports: at(0),
            accepted: at(1),
            due: at(2),
            closed: at(3),
            closed_on_time: at(4),
            rated: at(5),
            satisfied: at(6),
            reworked: at(7),
            extended: at(8),
            overdue: at(9),
        }
    }

    /// 立案率: accepted / reports.
    pub fn acceptance_rate(&self) -> Option<f64> {
        ratio(self.accepted, self.reports)
    }
    /// 结案率: closed / due.
    pub fn closure_rate(&self) -> Option<f64> {
        ratio(self.closed, self.due)
    }
    /// 按期结案率: closed on time / due.
    pub fn on_time_rate(&self) -> Option<f64> {
        ratio(self.closed_on_time, self.due)
    }
    /// 满意率: satisfied (incl. basically) / rated.
    pub fn satisfaction_rate(&self) -> Option<f64> {
        ratio(self.satisfied, self.rated)
    }
    /// 返工率: reworked / closed.
    pub fn rework_rate(&self) -> Option<f64> {
        ratio(self.reworked, self.closed)
    }
    /// 延期率: extended / accepted.
    pub fn extension_rate(&self) -> Option<f64> {
        ratio(self.extended, self.accepted)
    }
}

/// The report column holding the grid of `level` (exclusive grids are not a partition and
/// are counted elsewhere).
pub fn grid_column(level: Level) -> Option<&'static str> {
    match level {
        Level::District => Some("district"),
        Level::One => Some("grid_l1"),
        Level::Two => Some("grid_l2"),
        Level::Three => Some("grid_l3"),
        Level::Micro => Some("micro"),
        Level::Exclusive => None,
    }
}

/// The SQL aggregates of [`KpiCounts`], in field order; `?` is the current time.
const KPI_AGGREGATES: &str = "count(*), count(accepted_at), \
    count(*) FILTER (WHERE accepted_at IS NOT NULL AND (closed_at IS NOT NULL OR deadline <= ?)), \
    count(closed_at), \
    count(*) FILTER (WHERE closed_at IS NOT NULL AND closed_at <= deadline), \
    count(rating), \
    count(*) FILTER (WHERE rating IN ('satisfied', 'basically_satisfied')), \
    count(*) FILTER (WHERE rework_count > 0), \
    count(*) FILTER (WHERE extension_count > 0), \
    count(*) FILTER (WHERE status NOT IN ('closed', 'rejected') AND deadline < ?)";

/// The KPIs of one set of reports (a grid, a window, filters), with times to close.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct KpiSummary {
    /// The counts.
    #[schema(value_type = Object)]
    pub counts: KpiCounts,
    /// 立案率.
    pub acceptance_rate: Option<f64>,
    /// 结案率.
    pub closure_rate: Option<f64>,
    /// 按期结案率.
    pub on_time_rate: Option<f64>,
    /// 满意率.
    pub satisfaction_rate: Option<f64>,
    /// 返工率.
    pub rework_rate: Option<f64>,
    /// 延期率.
    pub extension_rate: Option<f64>,
    /// Mean hours from report to closing, over the closed ones.
    pub mean_hours_to_close: Option<f64>,
    /// 90th percentile of hours from report to closing.
    pub p90_hours_to_close: Option<f64>,
}

impl From<KpiCounts> for KpiSummary {
    fn from(c: KpiCounts) -> Self {
        Self {
            counts: c,
            acceptance_rate: c.acceptance_rate(),
            closure_rate: c.closure_rate(),
            on_time_rate: c.on_time_rate(),
            satisfaction_rate: c.satisfaction_rate(),
            rework_rate: c.rework_rate(),
            extension_rate: c.extension_rate(),
            mean_hours_to_close: None,
            p90_hours_to_close: None,
        }
    }
}

/// The KPIs of the reports matching `filter`, as of `now`; with `times`, also the mean and p90
/// time to close (a sort, so comparisons leave it out).
pub fn summary(
    conn: &Connection,
    filter: &ReportFilter,
    now: DateTime<Utc>,
    times: bool,
) -> Result<KpiSummary, StoreError> {
    let now_arg = Value::Timestamp(duckdb::types::TimeUnit::Microsecond, now.timestamp_micros());
    let select = if times {
        format!(
            "{KPI_AGGREGATES}, \
             avg(epoch(closed_at) - epoch(reported_at)) / 3600.0, \
             quantile_cont(epoch(closed_at) - epoch(reported_at), 0.9) / 3600.0"
        )
    } else {
        format!("{KPI_AGGREGATES}, NULL::DOUBLE, NULL::DOUBLE")
    };
    filtered_row(conn, &select, vec![now_arg.clone(), now_arg], filter, |r| {
        let values = (0..10)
            .map(|i| r.get::<_, i64>(i).map(|v| v.max(0) as u64))
            .collect::<Result<Vec<_>, _>>()?;
        let counts = KpiCounts::from_values(&values);
        Ok(KpiSummary {
            mean_hours_to_close: r.get::<_, Option<f64>>(10)?,
            p90_hours_to_close: r.get::<_, Option<f64>>(11)?,
            ..KpiSummary::from(counts)
        })
    })
}

/// What to group reports by for KPIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// The grid of a level (exclusive grids are not a partition and cannot be grouped by).
    Grid(Level),
    /// The category.
    Category,
    /// The major class (`matter:06`).
    MajorClass,
    /// The intake channel.
    Channel,
    /// A time bucket of the local (UTC+8) calendar: `hour`, `day`, `week` or `month`.
    Time(&'static str),
}

impl Grouping {
    /// The SQL expression of the group key.
    fn key_sql(self) -> Option<String> {
        Some(match self {
            Grouping::Grid(level) => grid_column(level)?.to_string(),
            Grouping::Category => "category".into(),
            Grouping::MajorClass => "substr(category, 1, strpos(category, ':') + 2)".into(),
            Grouping::Channel => "channel".into(),
            Grouping::Time(bucket) => format!(
                "strftime(date_trunc('{bucket}', reported_at + INTERVAL 8 HOUR), '%Y-%m-%dT%H:%M:%S+08:00')"
            ),
        })
    }
}

/// KPI counts per group for the reports matching `filter`, as of `now`.
pub fn grouped(
    conn: &Connection,
    by: Grouping,
    filter: &ReportFilter,
    now: DateTime<Utc>,
) -> Result<HashMap<String, KpiCounts>, StoreError> {
    let Some(key) = by.key_sql() else {
        return Ok(HashMap::new());
    };
    let now_arg = Value::Timestamp(duckdb::types::TimeUnit::Microsecond, now.timestamp_micros());
    let rows = grouped_counts(
        conn,
        &key,
        KPI_AGGREGATES,
        vec![now_arg.clone(), now_arg],
        filter,
    )?;
    Ok(rows
        .into_iter()
        .map(|(group, c)| (group, KpiCounts::from_values(&c)))
        .collect())
}

/// KPI counts per grid of `level` for the reports matching `filter`, as of `now`.
pub fn per_grid(
    conn: &Connection,
    level: Level,
    filter: &ReportFilter,
    now: DateTime<Utc>,
) -> Result<HashMap<String, KpiCounts>, StoreError> {
    grouped(conn, Grouping::Grid(level), filter, now)
}
