//! The demo report history: deterministic for a seed, shaped like a real city's (rhythm,
//! channels, outcomes near Zhengzhou's published rates), and loaded with histories whose every
//! step is a legal transition.

mod common;

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate, Timelike};
use gridscope::report::history::{HistoricReport, HistoryConfig, HistoryGenerator};
use gridscope::report::lifecycle::{State, next_status};
use gridscope::report::{Catalog, DeadlineRules, Status};
use gridscope::store::{bulk, query, schema};

fn config() -> HistoryConfig {
    HistoryConfig {
        seed: 11,
        reports: 40_000,
        days: 120,
        end: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
    }
}

fn all(g: &HistoryGenerator<'_>) -> Vec<HistoricReport> {
    (0..g.days()).flat_map(|d| g.day(d)).collect()
}

#[test]
fn the_history_is_deterministic_and_shaped_like_a_city() {
    let city = common::small_city();
    let rules = DeadlineRules::default().prepare().unwrap();
    let catalog = Catalog::embedded();
    let g = HistoryGenerator::new(config(), &city, &rules, &catalog);
    assert_eq!(g.total(), 40_000);
    let a = all(&g);
    let b = all(&HistoryGenerator::new(config(), &city, &rules, &catalog));
    assert_eq!(a.len(), 40_000);
    assert!(a.iter().zip(&b).all(|(x, y)| x.id == y.id
        && x.report.reported_at == y.report.reported_at
        && x.outcome == y.outcome
        && x.report.lon == y.report.lon));
    // Ids follow time.
    assert!(
        a.windows(2)
            .all(|w| w[0].id.0 < w[1].id.0 && w[0].report.reported_at <= w[1].report.reported_at)
    );

    // Rhythm: weekdays busier than Sundays, mid-morning busier than the small hours (local time).
    let local = |r: &HistoricReport| r.report.reported_at + chrono::Duration::hours(8);
    let mut by_weekday = [0u32; 7];
    let mut by_hour = [0u32; 24];
    for r in &a {
        by_weekday[local(r).weekday().num_days_from_monday() as usize] += 1;
        by_hour[local(r).hour() as usize] += 1;
    }
    assert!(
        by_weekday[2] as f64 > 1.2 * by_weekday[6] as f64,
        "{by_weekday:?}"
    );
    assert!(by_hour[10] > 10 * by_hour[3], "{by_hour:?}");

    // Channels and outcomes.
    let mut channels: HashMap<&str, u32> = HashMap::new();
    for r in &a {
        *channels.entry(r.report.channel.name()).or_default() += 1;
    }
    assert!(channels["app"] > channels["patrol"] && channels["patrol"] > channels["video_ai"]);
    let end = g.end();
    let due = a
        .iter()
        .filter(|r| {
            r.outcome.accepted_at.is_some()
                && (r.outcome.closed_at.is_some() || r.outcome.deadline <= end)
        })
        .count() as f64;
    let closed = a.iter().filter(|r| r.outcome.closed_at.is_some()).count() as f64;
    let rated = a.iter().filter(|r| r.outcome.rating.is_some()).count() as f64;
    let satisfied = a
        .iter()
        .filter(|r| {
            matches!(
                r.outcome.rating.map(|x| x.name()),
                Some("satisfied" | "basically_satisfied")
            )
        })
        .count() as f64;
    let closure = closed / due;
    let satisfaction = satisfied / rated;
    assert!((0.95..0.99).contains(&closure), "closure {closure}");
    assert!(
        (0.93..0.99).contains(&satisfaction),
        "satisfaction {satisfaction}"
    );
    for (what, n) in [
        ("rework", a.iter().filter(|r| r.outcome.rework > 0).count()),
        (
            "extended",
            a.iter().filter(|r| r.outcome.extensions > 0).count(),
        ),
        (
            "escalated",
            a.iter().filter(|r| r.outcome.escalations > 0).count(),
        ),
        (
            "rejected",
            a.iter()
                .filter(|r| r.outcome.status == Status::Rejected)
                .count(),
        ),
        (
            "overdue",
            a.iter()
                .filter(|r| {
                    !matches!(r.outcome.status, Status::Closed | Status::Rejected)
                        && r.outcome.deadline < end
                })
                .count(),
        ),
    ] {
        let share = n as f64 / a.len() as f64;
        assert!((0.003..0.08).contains(&share), "{what}: {share}");
    }

    // Every step is one the lifecycle rules allow, from the status the report was in.
    for r in &a {
        let mut state = State {
            status: Status::Reported,
            rated: false,
        };
        for e in &r.outcome.events {
            assert_eq!(e.from, state.status, "report {}", r.id.0);
            let action = match e.action.name() {
                "accept" => serde_json::json!({"action": "accept"}),
                "reject" => serde_json::json!({"action": "reject"}),
                "dispatch" => serde_json::json!({"action": "dispatch"}),
                "handle" => serde_json::json!({"action": "handle"}),
                "check" => serde_json::json!({"action": "check", "pass": e.to == Status::Closed}),
                "extend" => serde_json::json!({"action": "extend", "hours": 4}),
                "escalate" => serde_json::json!({"action": "escalate"}),
                "rate" => serde_json::json!({"action": "rate", "rating": "satisfied"}),
                other => panic!("unexpected action {other}"),
            };
            let action = serde_json::from_value(action).unwrap();
            assert_eq!(
                next_status(state, &action).unwrap(),
                e.to,
                "report {}",
                r.id.0
            );
            state = State {
                status: e.to,
                rated: state.rated || e.action.name() == "rate",
            };
        }
        assert_eq!(state.status, r.outcome.status);
    }
}

#[test]
fn a_loaded_history_reads_back_with_every_step() {
    let city = common::small_city();
    let rules = DeadlineRules::default().prepare().unwrap();
    let catalog = Catalog::embedded();
    let cfg = HistoryConfig {
        reports: 5_000,
        days: 30,
        ..config()
    };
    let g = HistoryGenerator::new(cfg, &city, &rules, &catalog);
    let dir = tempfile::tempdir().unwrap();
    let conn = duckdb::Connection::open(dir.path().join("h.duckdb")).unwrap();
    schema::migrate(&conn).unwrap();
    let loaded = bulk::load_history(&conn, &g, &|_| {}).unwrap();
    assert_eq!(loaded, 5_000);
    assert_eq!(bulk::report_count(&conn).unwrap(), 5_000);
    let day = g.day(3);
    let closed = day
        .iter()
        .find(|r| r.outcome.status == Status::Closed && r.outcome.rating.is_some())
        .unwrap();
    let stored = query::report(&conn, closed.id).unwrap().unwrap();
    assert_eq!(stored.status, Status::Closed);
    assert_eq!(stored.category, closed.report.category);
    let history = query::history(&conn, closed.id).unwrap();
    let actions: Vec<&str> = history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(actions.first(), Some(&"report"));
    assert_eq!(actions.last(), Some(&"rate"));
    assert_eq!(history.len(), closed.outcome.events.len() + 1);
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));
}
