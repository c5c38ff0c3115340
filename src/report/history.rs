//! The demo report history: months of reports over the demo city with the rhythm, places,
//! categories, channels and outcomes of a real city's grid governance (DESIGN.md §4).
//!
//! - Volume per day follows the week (fewer on weekends), the season (a summer peak) and a slow
//!   growth; per hour it follows the working day, with night-time reports from video AI and
//!   IoT sensors.
//! - About 40% of reports come from hotspots: persistent ones (markets, stations, old
//!   residential compounds, each with its typical problems) and a few emerging ones that start
//!   in the last months and grow. The rest spread over the level-3 grids, which are smaller and
//!   so denser toward the centre.
//! - Categories follow the GB/T 47678.5 classes with street appearance and order first;
//!   channels are mostly the citizen app, the 12345 hotline and patrols.
//! - Every report runs through the lifecycle against its real deadline on the working
//!   calendar: most are closed on time, some late, some extended, reworked, escalated or
//!   rejected; most closed ones are rated, nearly all satisfied. Reports near the end are still
//!   open, as in a live system.
//!
//! Each day is generated from its own seed, so days can be made in parallel and the same
//! configuration always gives the same history.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::category::{Catalog, CategoryId};
use super::deadline::DeadlineRules;
use super::intake::{ReportDraft, prepare};
use super::lifecycle::ActionKind;
use super::model::{Channel, Rating, ReportId, Status};
use crate::assign::Assigner;
use crate::coords::{Crs, Wgs84Point};
use crate::grid::code::Level;
use crate::store::record::{NewReport, RawLocation};

/// What history to make.
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    /// Seed for every random choice.
    pub seed: u64,
    /// Reports in all.
    pub reports: u64,
    /// Days of history, ending the day before `end`.
    pub days: u32,
    /// The first day after the history (local date, UTC+8); reports are reported before it.
    pub end: NaiveDate,
}

impl HistoryConfig {
    /// Zhengzhou's scale: 5 million reports over 15 months, ending on `end`.
    pub fn zhengzhou(end: NaiveDate) -> Self {
        Self {
            seed: 7,
            reports: 5_000_000,
            days: 456,
            end,
        }
    }
}

/// One step of a report's lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub action: ActionKind,
    /// Status before.
    pub from: Status,
    /// Status after.
    pub to: Status,
    /// Arguments as JSON (rating, hours, check result), as the API records them.
    pub detail: Option<String>,
}

/// Where a generated report stands at the end of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Status now.
    pub status: Status,
    /// Deadline (after any extension).
    pub deadline: DateTime<Utc>,
    /// Lifecycle times.
    pub accepted_at: Option<DateTime<Utc>>,
    /// Last dispatch.
    pub dispatched_at: Option<DateTime<Utc>>,
    /// Last handling.
    pub handled_at: Option<DateTime<Utc>>,
    /// Closing.
    pub closed_at: Option<DateTime<Utc>>,
    /// The reporter's rating.
    pub rating: Option<Rating>,
    /// Failed checks.
    pub rework: u32,
    /// Deadline extensions.
    pub extensions: u32,
    /// Escalations.
    pub escalations: u32,
    /// The grid (or higher unit) responsible now.
    pub responsible: String,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The steps after the report itself, in order.
    pub events: Vec<Event>,
}

/// A generated report with its outcome.
#[derive(Debug, Clone)]
pub struct HistoricReport {
    /// Its id.
    pub id: ReportId,
    /// The report as intake would have stored it.
    pub report: NewReport,
    /// Where it stands.
    pub outcome: Outcome,
}

/// A place that draws many reports.
#[derive(Debug, Clone)]
struct Hotspot {
    lon: f64,
    lat: f64,
    /// Standard deviation of the spread, in degrees.
    spread: f64,
    weight: f64,
    /// Major classes typical of the place.
    majors: &'static [&'static str],
    /// First day it draws reports (0 for persistent ones); emerging ones grow from there.
    from_day: u32,
}

const MARKET: &[&str] = &["matter:06", "matter:09"];
const STATION: &[&str] = &["matter:09", "component:02", "matter:06"];
const OLD_COMPOUND: &[&str] = &["component:01", "matter:06", "component:03"];
const CONSTRUCTION: &[&str] = &["matter:08", "matter:06"];

/// Share of reports per major class (the rest of the catalog gets what is left, evenly).
const MAJOR_SHARES: [(&str, f64); 15] = [
    ("matter:06", 0.30),
    ("matter:09", 0.17),
    ("component:01", 0.11),
    ("matter:08", 0.08),
    ("component:02", 0.06),
    ("component:03", 0.05),
    ("matter:07", 0.05),
    ("matter:01", 0.04),
    ("matter:03", 0.03),
    ("component:04", 0.03),
    ("matter:02", 0.02),
    ("matter:04", 0.02),
    ("component:05", 0.01),
    ("matter:05", 0.02),
    ("matter:10", 0.01),
];

const CHANNEL_SHARES: [(Channel, f64); 6] = [
    (Channel::App, 0.33),
    (Channel::Hotline12345, 0.27),
    (Channel::Patrol, 0.25),
    (Channel::VideoAi, 0.10),
    (Channel::Police110, 0.03),
    (Channel::Iot, 0.02),
];

/// Relative reports per local hour for people (apps, hotline, patrols) and for machines.
const PEOPLE_HOURS: [f64; 24] = [
    0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 2.6, 4.6, 6.0, 6.4, 5.8, 4.2, 3.4, 4.6, 5.6, 6.0, 5.4, 4.0,
    3.2, 2.6, 2.0, 1.2, 0.6,
];
const MACHINE_HOURS: [f64; 24] = [
    1.6, 1.4, 1.3, 1.3, 1.4, 1.8, 2.4, 3.0, 3.4, 3.4, 3.4, 3.3, 3.2, 3.2, 3.3, 3.4, 3.5, 3.5, 3.4,
    3.2, 3.0, 2.6, 2.2, 1.8,
];

/// Local time (UTC+8) offset.
const LOCAL_OFFSET_H: i64 = 8;

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for &(item, w) in items {
        if x < w {
            return item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

fn pick_index(rng: &mut ChaCha8Rng, cumulative: &[f64]) -> usize {
    let x = rng.random::<f64>() * cumulative.last().copied().unwrap_or(0.0);
    cumulative
        .partition_point(|&c| c <= x)
        .min(cumulative.len().saturating_sub(1))
}

fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller.
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn log_normal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * gaussian(rng)).exp()
}

/// Makes a report history over an assigned city.
pub struct HistoryGenerator<'a> {
    cfg: HistoryConfig,
    assigner: &'a Assigner,
    rules: &'a DeadlineRules,
    classes: Vec<(CategoryId, String)>,
    /// Per major class in `MAJOR_SHARES` order: cumulative weights over `classes` indexes.
    by_major: Vec<(Vec<usize>, Vec<f64>)>,
    hotspots: Vec<Hotspot>,
    /// Level-3 grid bounding boxes (west, south, east, north).
    grids: Vec<[f64; 4]>,
    /// Reports per day and the id of each day's first report.
    plan: Vec<(u32, i64)>,
}

impl<'a> HistoryGenerator<'a> {
    /// Prepares the plan: hotspots, daily volumes and ids.
    pub fn new(
        cfg: HistoryConfig,
        assigner: &'a Assigner,
        rules: &'a DeadlineRules,
        catalog: &Catalog,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let classes: Vec<(CategoryId, String)> = catalog
            .classes()
            .iter()
            .map(|c| (c.id, c.name.clone()))
            .collect();
        let by_major = MAJOR_SHARES
            .iter()
            .map(|(major, _)| {
                let idx: Vec<usize> = (0..classes.len())
                    .filter(|&i| classes[i].0.to_string().starts_with(major))
                    .collect();
                // A few classes of each major draw most of its reports (Zipf-like).
                let mut cum = Vec::with_capacity(idx.len());
                let mut acc = 0.0;
                for k in 0..idx.len() {
                    acc += 1.0 / (k as f64 + 1.0);
                    cum.push(acc);
                }
                (idx, cum)
            })
            .collect();
        let set = assigner.grids();
        let grids: Vec<[f64; 4]> = set
            .ids_at(Level::Three)
            .filter_map(|id| {
                use geo::BoundingRect;
                set.grid(id)
                    .geometry
                    .bounding_rect()
                    .map(|r| [r.min().x, r.min().y, r.max().x, r.max().y])
            })
            .collect();
        let hotspots = Self::hotspots(&mut rng, &grids, cfg.days);
        let plan = Self::plan(&cfg, &mut rng);
        Self {
            cfg,
            assigner,
            rules,
            classes,
            by_major,
            hotspots,
            grids,
            plan,
        }
    }

    fn hotspots(rng: &mut ChaCha8Rng, grids: &[[f64; 4]], days: u32) -> Vec<Hotspot> {
        let mut out = Vec::new();
        if grids.is_empty() {
            return out;
        }
        let count = (grids.len() / 50).clamp(4, 400);
        for i in 0..count + count / 30 + 1 {
            let g = grids[rng.random_range(0..grids.len())];
            let (lon, lat) = ((g[0] + g[2]) / 2.0, (g[1] + g[3]) / 2.0);
            let emerging = i >= count;
            let majors = match i % 4 {
                0 => MARKET,
                1 => STATION,
                2 => OLD_COMPOUND,
                _ => CONSTRUCTION,
            };
            out.push(Hotspot {
                lon,
                lat,
                spread: 0.0006 + rng.random::<f64>() * 0.002,
                // Pareto-like: a few places draw a lot.
                weight: 1.0 / rng.random::<f64>().max(0.02).powf(0.8),
                majors,
                from_day: if emerging {
                    days.saturating_sub(rng.random_range(30..120.min(days.max(31))))
                } else {
                    0
                },
            });
        }
        out
    }

    /// Reports per day: week, season and growth, scaled to the total exactly.
    fn plan(cfg: &HistoryConfig, rng: &mut ChaCha8Rng) -> Vec<(u32, i64)> {
        let first = cfg.end - Duration::days(i64::from(cfg.days));
        let weights: Vec<f64> = (0..cfg.days)
            .map(|d| {
                let day = first + Duration::days(i64::from(d));
                let week = match day.weekday().num_days_from_monday() {
                    5 => 0.78,
                    6 => 0.70,
                    _ => 1.0,
                };
                let season = 1.0
                    + 0.15
                        * (std::f64::consts::TAU * (f64::from(day.ordinal()) - 105.0) / 365.0)
                            .sin();
                let growth = 1.0 + 0.12 * f64::from(d) / f64::from(cfg.days.max(1));
                week * season * growth * (0.95 + 0.1 * rng.random::<f64>())
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut counts: Vec<u32> = weights
            .iter()
            .map(|w| (cfg.reports as f64 * w / total).floor() as u32)
            .collect();
        let mut missing = cfg
            .reports
            .saturating_sub(counts.iter().map(|&c| u64::from(c)).sum());
        let mut d = 0usize;
        let days = counts.len();
        while missing > 0 && days > 0 {
            counts[d % days] += 1;
            missing -= 1;
            d += 7;
        }
        let mut next_id = 1i64;
        counts
            .into_iter()
            .map(|c| {
                let first_id = next_id;
                next_id += i64::from(c);
                (c, first_id)
            })
            .collect()
    }

    /// How many days the history spans.
    pub fn days(&self) -> usize {
        self.plan.len()
    }

    /// Reports in all.
    pub fn total(&self) -> u64 {
        self.plan.iter().map(|&(c, _)| u64::from(c)).sum()
    }

    /// The moment the history ends (local midnight of `end`): outcomes are as of then.
    pub fn end(&self) -> DateTime<Utc> {
        local_midnight(self.cfg.end)
    }

    /// The reports of day `d` (0 = the first), with consecutive ids in time order.
    pub fn day(&self, d: usize) -> Vec<HistoricReport> {
        let Some(&(count, first_id)) = self.plan.get(d) else {
            return Vec::new();
        };
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed ^ ((d as u64 + 1) << 20));
        let date = self.cfg.end - Duration::days(self.plan.len() as i64 - d as i64);
        let midnight = local_midnight(date);
        let spots = self.active_hotspots(d as u32);
        let people: Vec<(u32, f64)> = (0..24).map(|h| (h as u32, PEOPLE_HOURS[h])).collect();
        let machines: Vec<(u32, f64)> = (0..24).map(|h| (h as u32, MACHINE_HOURS[h])).collect();
        let mut out: Vec<HistoricReport> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let channel = pick(&mut rng, &CHANNEL_SHARES);
            let hours = if matches!(channel, Channel::VideoAi | Channel::Iot) {
                &machines
            } else {
                &people
            };
            let hour = pick(&mut rng, hours);
            let at = midnight
                + Duration::hours(i64::from(hour))
                + Duration::seconds(rng.random_range(0..3600));
            let Some(report) = self.draw(&mut rng, channel, at, &spots) else {
                continue;
            };
            let outcome = self.outcome(&mut rng, &report);
            out.push(HistoricReport {
                id: ReportId(0),
                report,
                outcome,
            });
        }
        out.sort_by_key(|r| r.report.reported_at);
        for (i, r) in out.iter_mut().enumerate() {
            r.id = ReportId(first_id + i as i64);
        }
        out
    }

    /// The hotspots drawing reports on day `day`, with their weights then (cumulative).
    fn active_hotspots(&self, day: u32) -> (Vec<usize>, Vec<f64>) {
        let mut idx = Vec::new();
        let mut cum = Vec::new();
        let mut acc = 0.0;
        for (i, h) in self
            .hotspots
            .iter()
            .enumerate()
            .filter(|(_, h)| h.from_day <= day)
        {
            let age = f64::from(day - h.from_day);
            acc += if h.from_day > 0 {
                h.weight * (age / 30.0).min(3.0)
            } else {
                h.weight
            };
            idx.push(i);
            cum.push(acc);
        }
        (idx, cum)
    }

    /// One report from `channel` at `at`: a place (a hotspot or anywhere in the grids), a
    /// category typical of it, assigned and given its deadline.
    fn draw(
        &self,
        rng: &mut ChaCha8Rng,
        channel: Channel,
        at: DateTime<Utc>,
        (spots, cum): &(Vec<usize>, Vec<f64>),
    ) -> Option<NewReport> {
        let hotspot = (!cum.is_empty() && rng.random::<f64>() < 0.4)
            .then(|| &self.hotspots[spots[pick_index(rng, cum)]]);
        let (lon, lat) = match hotspot {
            Some(h) => (
                h.lon + gaussian(rng) * h.spread * 1.2,
                h.lat + gaussian(rng) * h.spread,
            ),
            None => {
                let g = self
                    .grids
                    .get(rng.random_range(0..self.grids.len().max(1)))?;
                (rng.random_range(g[0]..=g[2]), rng.random_range(g[1]..=g[3]))
            }
        };
        let category = self.category(rng, hotspot.map(|h| h.majors));
        let location = Wgs84Point::new(lon, lat).ok()?;
        let (id, name) = &self.classes[category];
        let draft = ReportDraft {
            channel,
            category: *id,
            description: name.clone(),
            reporter_ref: None,
            photos: Vec::new(),
            raw: RawLocation {
                lon,
                lat,
                crs: Crs::Wgs84,
            },
            location,
            reported_at: Some(at),
            idempotency_key: None,
        };
        Some(prepare(self.assigner, self.rules, draft, "demo-history", at).0)
    }

    /// A new report happening `at` (for the live demo): drawn like the history's, from the
    /// hotspots active at its end.
    pub fn live(&self, rng: &mut ChaCha8Rng, at: DateTime<Utc>) -> Option<NewReport> {
        let spots = self.active_hotspots(self.cfg.days);
        let channel = pick(rng, &CHANNEL_SHARES);
        self.draw(rng, channel, at, &spots)
    }

    fn category(&self, rng: &mut ChaCha8Rng, typical: Option<&[&str]>) -> usize {
        let major = match typical {
            Some(m) if rng.random::<f64>() < 0.6 => {
                let want = m[rng.random_range(0..m.len())];
                MAJOR_SHARES
                    .iter()
                    .position(|(x, _)| *x == want)
                    .unwrap_or(0)
            }
            _ => {
                let shares: Vec<(usize, f64)> = MAJOR_SHARES
                    .iter()
                    .enumerate()
                    .map(|(i, (_, s))| (i, *s))
                    .collect();
                pick(rng, &shares)
            }
        };
        let (idx, cum) = &self.by_major[major];
        if idx.is_empty() {
            return rng.random_range(0..self.classes.len().max(1));
        }
        idx[pick_index(rng, cum)]
    }

    /// Runs one report through its lifecycle up to the end of the history.
    fn outcome(&self, rng: &mut ChaCha8Rng, r: &NewReport) -> Outcome {
        let end = self.end();
        let cal = self.rules.calendar();
        let limit = self.rules.limit_minutes(r.category).max(30);
        let mut o = Outcome {
            status: Status::Reported,
            deadline: r.deadline,
            accepted_at: None,
            dispatched_at: None,
            handled_at: None,
            closed_at: None,
            rating: None,
            rework: 0,
            extensions: 0,
            escalations: 0,
            responsible: r.placement.responsible.to_string(),
            updated_at: r.reported_at,
            events: Vec::new(),
        };
        let mut t = r.reported_at;
        // Each step happens if its time has come by the end of the history.
        let step = |o: &mut Outcome,
                    at: DateTime<Utc>,
                    action: ActionKind,
                    to: Status,
                    detail: Option<String>|
         -> bool {
            if at >= end {
                return false;
            }
            o.events.push(Event {
                at,
                action,
                from: o.status,
                to,
                detail,
            });
            o.status = to;
            o.updated_at = at;
            true
        };
        t += Duration::minutes(log_normal(rng, 20.0, 0.9).clamp(1.0, 600.0) as i64);
        if rng.random::<f64>() < 0.02 {
            step(&mut o, t, ActionKind::Reject, Status::Rejected, None);
            return o;
        }
        if !step(&mut o, t, ActionKind::Accept, Status::Accepted, None) {
            return o;
        }
        o.accepted_at = Some(t);
        if rng.random::<f64>() < 0.015 {
            t += Duration::minutes(rng.random_range(10..240));
            let up = r
                .placement
                .responsible
                .get(..r.placement.responsible.len().saturating_sub(3).max(6))
                .unwrap_or("city")
                .to_string();
            if !step(&mut o, t, ActionKind::Escalate, Status::Dispatched, None) {
                return o;
            }
            o.responsible = up;
            o.escalations = 1;
        } else {
            t += Duration::minutes(log_normal(rng, 8.0, 0.8).clamp(1.0, 240.0) as i64);
            if !step(&mut o, t, ActionKind::Dispatch, Status::Dispatched, None) {
                return o;
            }
        }
        o.dispatched_at = Some(t);
        // About 3% are never handled: they stay open and become overdue.
        if rng.random::<f64>() < 0.028 {
            return o;
        }
        let extend = rng.random::<f64>() < 0.04;
        let mut budget = limit as f64;
        if extend {
            let hours = (limit / 60 / 2).max(1) as u32;
            let at = cal.add_working_minutes(t, (limit / 3).max(10));
            let status = o.status;
            if !step(
                &mut o,
                at,
                ActionKind::Extend,
                status,
                Some(format!("{{\"hours\":{hours}}}")),
            ) {
                return o;
            }
            o.deadline = cal.add_working_minutes(o.deadline, i64::from(hours) * 60);
            o.extensions = 1;
            t = at;
            budget += f64::from(hours) * 60.0;
        }
        // Handling takes a share of the time limit; about 5% run late.
        let share = log_normal(rng, 0.3, 0.75);
        let minutes = (budget * share).clamp(10.0, budget * 3.0) as i64;
        t = cal.add_working_minutes(t, minutes);
        if !step(&mut o, t, ActionKind::Handle, Status::Handled, None) {
            return o;
        }
        o.handled_at = Some(t);
        if rng.random::<f64>() < 0.03 {
            t += Duration::minutes(rng.random_range(30..300));
            if !step(
                &mut o,
                t,
                ActionKind::Check,
                Status::Dispatched,
                Some("{\"pass\":false}".into()),
            ) {
                return o;
            }
            o.rework = 1;
            t = cal.add_working_minutes(t, (limit / 4).max(20));
            if !step(&mut o, t, ActionKind::Handle, Status::Handled, None) {
                return o;
            }
            o.handled_at = Some(t);
        }
        t += Duration::minutes(log_normal(rng, 45.0, 0.8).clamp(5.0, 1440.0) as i64);
        if !step(
            &mut o,
            t,
            ActionKind::Check,
            Status::Closed,
            Some("{\"pass\":true}".into()),
        ) {
            return o;
        }
        o.closed_at = Some(t);
        if rng.random::<f64>() < 0.8 {
            let rating = pick(
                rng,
                &[
                    (Rating::Satisfied, 0.86),
                    (Rating::Basically, 0.10),
                    (Rating::Unsatisfied, 0.04),
                ],
            );
            t += Duration::minutes(rng.random_range(30..2880));
            let detail = format!("{{\"rating\":\"{}\"}}", rating.name());
            if step(&mut o, t, ActionKind::Rate, Status::Closed, Some(detail)) {
                o.rating = Some(rating);
            }
        }
        o
    }
}

/// Midnight of `day` in Zhengzhou (UTC+8), as UTC.
pub fn local_midnight(day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    Utc.from_utc_datetime(&naive) - Duration::hours(LOCAL_OFFSET_H)
}
