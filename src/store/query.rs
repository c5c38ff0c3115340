//! Reads: one report, its history, and filtered listings with cursor paging. Reads run on their
//! own connections and see committed data only, so they never wait for the writer.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use duckdb::types::Value;
use duckdb::{Connection, OptionalExt, Row};

use super::StoreError;
use super::record::{HistoryEntry, Placement, RawLocation, ReportRecord};
use super::writer::ts;
use crate::Level;
use crate::export::{FileFormat, GeoJsonWriter, properties};
use crate::grid::code::GridCode;
use crate::report::{CategoryId, Channel, ReportId, Status};

const REPORT_COLUMNS: &str = "id, channel, category, description, reporter_ref, photos, raw_lon, \
    raw_lat, raw_crs, lon, lat, h3_r10, district, grid_l1, grid_l2, grid_l3, micro, exclusive, \
    assigned_grid, assign_method, assign_distance_m, responsible, status, reported_at, \
    created_at, deadline, accepted_at, dispatched_at, handled_at, closed_at, rating, \
    rework_count, extension_count, escalation_count, send_back_count, updated_at, created_by";

fn parse<T: std::str::FromStr>(s: String, what: &str) -> Result<T, duckdb::Error>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| {
        duckdb::Error::FromSqlConversionFailure(
            0,
            duckdb::types::Type::Text,
            format!("{what}: {e}").into(),
        )
    })
}

/// A nullable grid code column.
fn code(r: &Row<'_>, i: usize) -> Result<Option<Arc<str>>, duckdb::Error> {
    Ok(r.get::<_, Option<String>>(i)?.map(Arc::from))
}

fn report_from_row(r: &Row<'_>, now: DateTime<Utc>) -> Result<ReportRecord, duckdb::Error> {
    let photos: String = r.get(5)?;
    let exclusive: String = r.get(17)?;
    let status: Status = parse(r.get(22)?, "status")?;
    let deadline: DateTime<Utc> = r.get(25)?;
    let closed_at: Option<DateTime<Utc>> = r.get(29)?;
    let rating: Option<String> = r.get(30)?;
    let h3: u64 = r.get(11)?;
    Ok(ReportRecord {
        id: ReportId(r.get(0)?),
        channel: parse::<Channel>(r.get(1)?, "channel")?,
        category: parse::<CategoryId>(r.get(2)?, "category")?,
        description: r.get(3)?,
        reporter_ref: r.get(4)?,
        photos: serde_json::from_str(&photos).unwrap_or_default(),
        raw_location: RawLocation {
            lon: r.get(6)?,
            lat: r.get(7)?,
            crs: parse(r.get(8)?, "crs")?,
        },
        lon: r.get(9)?,
        lat: r.get(10)?,
        h3_r10: format!("{h3:x}"),
        placement: Placement {
            district: code(r, 12)?,
            grid_l1: code(r, 13)?,
            grid_l2: code(r, 14)?,
            grid_l3: code(r, 15)?,
            micro: code(r, 16)?,
            exclusive: exclusive
                .split(',')
                .filter(|s| !s.is_empty())
                .map(Arc::from)
                .collect(),
            assigned_grid: r.get::<_, String>(18)?.into(),
            method: parse(r.get(19)?, "assign_method")?,
            distance_m: r.get(20)?,
            responsible: r.get::<_, String>(21)?.into(),
        },
        status,
        reported_at: r.get(23)?,
        created_at: r.get(24)?,
        deadline,
        overdue: !status.is_final() && now > deadline,
        accepted_at: r.get(26)?,
        dispatched_at: r.get(27)?,
        handled_at: r.get(28)?,
        closed_at,
        closed_on_time: closed_at.map(|c| c <= deadline),
        rating: rating.map(|s| parse(s, "rating")).transpose()?,
        rework_count: r.get(31)?,
        extension_count: r.get(32)?,
        escalation_count: r.get(33)?,
        send_back_count: r.get(34)?,
        updated_at: r.get(35)?,
        created_by: r.get(36)?,
    })
}

/// One report by id.
pub fn report(conn: &Connection, id: ReportId) -> Result<Option<ReportRecord>, StoreError> {
    let now = Utc::now();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {REPORT_COLUMNS} FROM reports WHERE id = ?"
    ))?;
    Ok(stmt
        .query_row([id.0], |r| report_from_row(r, now))
        .optional()?)
}

/// A report's history, oldest first. Entry 0 is the report itself, read from its row; the
/// transitions after it are appended to `report_history` as they happen.
pub fn history(conn: &Connection, id: ReportId) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut first = conn.prepare_cached(
        "SELECT created_at, created_by, channel, assigned_grid, assign_method \
         FROM reports WHERE id = ?",
    )?;
    let Some(created) = first
        .query_row([id.0], |r| {
            let (channel, grid, method): (String, String, String) =
                (r.get(2)?, r.get(3)?, r.get(4)?);
            Ok(HistoryEntry {
                seq: 0,
                at: r.get(0)?,
                action: "report".into(),
                actor: r.get(1)?,
                from_status: None,
                to_status: Status::Reported.name().into(),
                reason: None,
                detail: Some(serde_json::json!({
                    "channel": channel, "assigned_grid": grid, "method": method,
                })),
            })
        })
        .optional()?
    else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT seq, happened_at, action, actor, from_status, to_status, reason, detail \
         FROM report_history WHERE report_id = ? ORDER BY seq",
    )?;
    let rows = stmt.query_map([id.0], |r| {
        let detail: Option<String> = r.get(7)?;
        Ok(HistoryEntry {
            seq: r.get(0)?,
            at: r.get(1)?,
            action: r.get(2)?,
            actor: r.get(3)?,
            from_status: r.get(4)?,
            to_status: r.get(5)?,
            reason: r.get(6)?,
            detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
        })
    })?;
    let mut out = vec![created];
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

/// Which reports a listing returns. Every field narrows the result; all are optional.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    /// Reports within this grid (any level; exclusive grids by membership).
    pub grid: Option<GridCode>,
    /// Reports in one of these statuses.
    pub status: Vec<Status>,
    /// Reports of any of these categories, or of a major class when given as `matter:06`.
    pub categories: Vec<String>,
    /// Only these reports.
    pub ids: Vec<ReportId>,
    /// Reports from this channel.
    pub channel: Option<Channel>,
    /// Reported at or after.
    pub from: Option<DateTime<Utc>>,
    /// Reported before.
    pub to: Option<DateTime<Utc>>,
    /// West, south, east, north in WGS84.
    pub bbox: Option<[f64; 4]>,
    /// Only reports created by this key (a reporter app sees its own).
    pub created_by: Option<String>,
    /// Only reports open past their deadline.
    pub overdue: Option<bool>,
}

/// A page of a listing, newest first, with the cursor of the next page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The reports.
    pub reports: Vec<ReportRecord>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next: Option<ReportId>,
}

/// The SQL conditions (joined with AND) and their arguments that select the reports matching
/// `filter` at time `now`.
fn filter_clauses(filter: &ReportFilter, now: DateTime<Utc>) -> (Vec<String>, Vec<Value>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(g) = &filter.grid {
        let column = match g.level() {
            Level::District => "district",
            Level::One => "grid_l1",
            Level::Two => "grid_l2",
            Level::Three => "grid_l3",
            Level::Micro => "micro",
            Level::Exclusive => "',' || exclusive || ','",
        };
        if g.level() == Level::Exclusive {
            clauses.push(format!("{column} LIKE ?"));
            args.push(Value::Text(format!("%,{},%", g.as_str())));
        } else {
            clauses.push(format!("{column} = ?"));
            args.push(Value::Text(g.as_str().to_string()));
        }
    }
    if !filter.status.is_empty() {
        let marks = vec!["?"; filter.status.len()].join(", ");
        clauses.push(format!("status IN ({marks})"));
        args.extend(filter.status.iter().map(|s| Value::Text(s.name().into())));
    }
    if !filter.categories.is_empty() {
        let ors = vec!["category LIKE ?"; filter.categories.len()].join(" OR ");
        clauses.push(format!("({ors})"));
        args.extend(
            filter
                .categories
                .iter()
                .map(|c| Value::Text(format!("{c}%"))),
        );
    }
    if !filter.ids.is_empty() {
        let marks = vec!["?"; filter.ids.len()].join(", ");
        clauses.push(format!("id IN ({marks})"));
        args.extend(filter.ids.iter().map(|i| Value::BigInt(i.0)));
    }
    if let Some(c) = filter.channel {
        clauses.push("channel = ?".into());
        args.push(Value::Text(c.name().into()));
    }
    if let Some(t) = filter.from {
        clauses.push("reported_at >= ?".into());
        args.push(ts(t));
    }
    if let Some(t) = filter.to {
        clauses.push("reported_at < ?".into());
        args.push(ts(t));
    }
    if let Some([w, s, e, n]) = filter.bbox {
        clauses.push("lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?".into());
        args.extend([w, e, s, n].map(Value::Double));
    }
    if let Some(k) = &filter.created_by {
        clauses.push("created_by = ?".into());
        args.push(Value::Text(k.clone()));
    }
    if let Some(overdue) = filter.overdue {
        let open = "status NOT IN ('closed', 'rejected') AND deadline < ?";
        clauses.push(if overdue {
            open.to_string()
        } else {
            format!("NOT ({open})")
        });
        args.push(ts(now));
    }
    (clauses, args)
}

fn where_sql(clauses: &[String]) -> String {
    if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    }
}

/// Lists reports matching `filter`, newest first, `limit` at a time, starting below `before`.
pub fn list(
    conn: &Connection,
    filter: &ReportFilter,
    before: Option<ReportId>,
    limit: usize,
) -> Result<Page, StoreError> {
    let now = Utc::now();
    let (mut clauses, mut args) = filter_clauses(filter, now);
    if let Some(b) = before {
        clauses.push("id < ?".into());
        args.push(Value::BigInt(b.0));
    }
    let filter_sql = where_sql(&clauses);
    let sql = format!(
        "SELECT {REPORT_COLUMNS} FROM reports {filter_sql} ORDER BY id DESC LIMIT {}",
        limit + 1
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut reports = stmt
        .query_map(duckdb::params_from_iter(args), |r| report_from_row(r, now))?
        .collect::<Result<Vec<_>, _>>()?;
    let next = if reports.len() > limit {
        reports.truncate(limit);
        reports.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Page { reports, next })
}

/// How many reports matching `filter` fall in each H3 cell of resolution `res` (one of
/// [`H3_RESOLUTIONS`](super::record::H3_RESOLUTIONS)), keeping cells with at least `min_count`.
pub fn h3_counts(
    conn: &Connection,
    filter: &ReportFilter,
    res: u8,
    min_count: u64,
) -> Result<Vec<(u64, u64)>, StoreError> {
    if !super::record::H3_RESOLUTIONS.contains(&res) {
        return Err(StoreError::Internal(format!(
            "no H3 cells of resolution {res} are stored"
        )));
    }
    let (clauses, mut args) = filter_clauses(filter, Utc::now());
    let sql = format!(
        "SELECT h3_r{res}, count(*) FROM reports {} GROUP BY 1 HAVING count(*) >= ?",
        where_sql(&clauses)
    );
    args.push(Value::UBigInt(min_count));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(duckdb::params_from_iter(args), |r| {
        Ok((r.get::<_, u64>(0)?, r.get::<_, u64>(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Reads the columns the map wall's first views aggregate (time, location, H3 cells, grids and
/// status) for the last `days` days, so that after a start they come from memory rather than
/// disk. Returns the number of reports read.
pub fn warm_recent(conn: &Connection, days: i64) -> Result<u64, StoreError> {
    let since = Utc::now() - chrono::Duration::days(days);
    let sql = "SELECT count(*), count(DISTINCT h3_r6), count(DISTINCT h3_r7), \
               count(DISTINCT h3_r8), count(DISTINCT h3_r9), count(DISTINCT h3_r10), \
               count(DISTINCT grid_l3), count(DISTINCT status), avg(lon), avg(lat) \
               FROM reports WHERE reported_at >= ?";
    let n: i64 = conn.query_row(sql, [since], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Rows of `SELECT key, aggregates... FROM reports WHERE filter GROUP BY key`: `aggregates` is a
/// comma-separated list of unsigned integer expressions whose own `?` placeholders take
/// `aggregate_args` (they come before the filter's).
pub fn grouped_counts(
    conn: &Connection,
    key: &str,
    aggregates: &str,
    aggregate_args: Vec<Value>,
    filter: &ReportFilter,
) -> Result<Vec<(String, Vec<u64>)>, StoreError> {
    let (clauses, args) = filter_clauses(filter, Utc::now());
    let sql = format!(
        "SELECT {key}, {aggregates} FROM reports {} GROUP BY 1",
        where_sql(&clauses)
    );
    let mut all = aggregate_args;
    all.extend(args);
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(duckdb::params_from_iter(all), |r| {
        let key: Option<String> = r.get(0)?;
        let n = r.as_ref().column_count();
        let counts = (1..n)
            .map(|i| r.get::<_, i64>(i).map(|v| v.max(0) as u64))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((key.unwrap_or_default(), counts))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One row of `SELECT select FROM reports WHERE filter`, read by `read`; `select` may use `?`
/// placeholders bound to `select_args` (before the filter's).
pub fn filtered_row<T>(
    conn: &Connection,
    select: &str,
    select_args: Vec<Value>,
    filter: &ReportFilter,
    read: impl FnOnce(&Row<'_>) -> Result<T, duckdb::Error>,
) -> Result<T, StoreError> {
    let (clauses, args) = filter_clauses(filter, Utc::now());
    let sql = format!("SELECT {select} FROM reports {}", where_sql(&clauses));
    let mut all = select_args;
    all.extend(args);
    let mut stmt = conn.prepare(&sql)?;
    Ok(stmt.query_row(duckdb::params_from_iter(all), read)?)
}

/// The columns of a report export, in order: name and SQL expression.
const EXPORT_COLUMNS: [(&str, &str); 34] = [
    ("id", "id"),
    ("reported_at", "reported_at"),
    ("channel", "channel"),
    ("category", "category"),
    ("description", "description"),
    ("lon", "lon"),
    ("lat", "lat"),
    ("raw_lon", "raw_lon"),
    ("raw_lat", "raw_lat"),
    ("raw_crs", "raw_crs"),
    ("district", "district"),
    ("grid_l1", "grid_l1"),
    ("grid_l2", "grid_l2"),
    ("grid_l3", "grid_l3"),
    ("micro", "micro"),
    ("exclusive", "exclusive"),
    ("assigned_grid", "assigned_grid"),
    ("assign_method", "assign_method"),
    ("responsible", "responsible"),
    ("status", "status"),
    ("deadline", "deadline"),
    ("accepted_at", "accepted_at"),
    ("dispatched_at", "dispatched_at"),
    ("handled_at", "handled_at"),
    ("closed_at", "closed_at"),
    ("rating", "rating"),
    ("rework_count", "rework_count"),
    ("extension_count", "extension_count"),
    ("escalation_count", "escalation_count"),
    ("h3_r6", "printf('%x', h3_r6)"),
    ("h3_r7", "printf('%x', h3_r7)"),
    ("h3_r8", "printf('%x', h3_r8)"),
    ("h3_r9", "printf('%x', h3_r9)"),
    ("h3_r10", "printf('%x', h3_r10)"),
];

/// The report's WGS84 location as a `GEOMETRY` point, built from its WKB (big-endian byte
/// order, type 1, then the raw bits of x and y), so coordinates are copied bit for bit.
const POINT_GEOMETRY: &str = "CAST(unhex('0000000001') || CAST(CAST(lon AS BIT) AS BLOB) \
    || CAST(CAST(lat AS BIT) AS BLOB) AS GEOMETRY)";

/// Writes the reports matching `filter` (oldest first) to the file at `path`; returns how many.
/// Parquet files are GeoParquet with the location as `geometry`; CSV keeps `lon` and `lat`;
/// GeoJSON features are points with every column as a property.
pub fn export(
    conn: &Connection,
    filter: &ReportFilter,
    format: FileFormat,
    path: &std::path::Path,
) -> Result<u64, StoreError> {
    let (clauses, args) = filter_clauses(filter, Utc::now());
    let columns: Vec<String> = EXPORT_COLUMNS
        .iter()
        .map(|(name, expr)| {
            if name == expr {
                name.to_string()
            } else {
                format!("{expr} AS {name}")
            }
        })
        .collect();
    let columns = columns.join(", ");
    let query = |extra: &str| {
        format!(
            "SELECT {columns}{extra} FROM reports {} ORDER BY id",
            where_sql(&clauses)
        )
    };
    let target = crate::export::sql_path(path);
    let copy = |select: String, options: &str| format!("COPY ({select}) TO '{target}' ({options})");
    let params = duckdb::params_from_iter(args);
    let n = match format {
        FileFormat::Parquet => conn.execute(
            &copy(
                query(&format!(", {POINT_GEOMETRY} AS geometry")),
                "FORMAT PARQUET, COMPRESSION ZSTD",
            ),
            params,
        )? as u64,
        FileFormat::Csv => conn.execute(&copy(query(""), "FORMAT CSV, HEADER"), params)? as u64,
        FileFormat::GeoJson => {
            let names: Vec<&str> = EXPORT_COLUMNS.iter().map(|(n, _)| *n).collect();
            let lon_at = names.iter().position(|n| *n == "lon").unwrap_or(0);
            let lat_at = names.iter().position(|n| *n == "lat").unwrap_or(0);
            let mut out = GeoJsonWriter::create(path)?;
            let mut stmt = conn.prepare(&query(""))?;
            let mut rows = stmt.query(params)?;
            let mut values = Vec::with_capacity(names.len());
            while let Some(row) = rows.next()? {
                values.clear();
                for i in 0..names.len() {
                    values.push(row.get::<_, Value>(i)?);
                }
                let coord = |i: usize| match values[i] {
                    Value::Double(x) => x,
                    _ => f64::NAN,
                };
                let point = geojson::Value::Point(vec![coord(lon_at), coord(lat_at)]);
                out.feature(properties(&names, &values)?, point)?;
            }
            out.finish()?
        }
    };
    Ok(n)
}

/// Where a report is and what it is, for maps.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPoint {
    /// The report.
    pub id: ReportId,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// Its category.
    pub category: String,
    /// Its status.
    pub status: String,
    /// When it was reported.
    pub reported_at: DateTime<Utc>,
    /// Whether it is open past its deadline.
    pub overdue: bool,
}

/// Up to `limit` reports matching `filter` (newest first), as points.
pub fn points(
    conn: &Connection,
    filter: &ReportFilter,
    limit: usize,
) -> Result<Vec<ReportPoint>, StoreError> {
    let now = Utc::now();
    let (clauses, mut args) = filter_clauses(filter, now);
    let sql = format!(
        "SELECT id, lon, lat, category, status, reported_at, \
         status NOT IN ('closed', 'rejected') AND deadline < ? \
         FROM reports {} ORDER BY id DESC LIMIT {limit}",
        where_sql(&clauses)
    );
    args.insert(0, ts(now));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(duckdb::params_from_iter(args), |r| {
        Ok(ReportPoint {
            id: ReportId(r.get(0)?),
            lon: r.get(1)?,
            lat: r.get(2)?,
            category: r.get(3)?,
            status: r.get(4)?,
            reported_at: r.get(5)?,
            overdue: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Number of reports and history entries: for health checks and tests.
pub fn counts(conn: &Connection) -> Result<(i64, i64), StoreError> {
    Ok(conn.query_row(
        "SELECT (SELECT count(*) FROM reports), (SELECT count(*) FROM report_history)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}
