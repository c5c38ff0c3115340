//! Deadlines (处置时限): each category has a time limit in working hours or working days,
//! counted on a working calendar (office hours, weekends, public holidays and the weekend days
//! made working days in exchange, 调休).

use std::collections::HashSet;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, Offset, TimeZone, Utc, Weekday,
};
use serde::{Deserialize, Serialize};

use super::category::CategoryId;

/// China Standard Time (UTC+8, no daylight saving): the calendar's clock.
fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or(Utc.fix())
}

/// A problem in the deadline configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadlineError {
    /// A period is not `HH:MM-HH:MM` with start before end.
    #[error("working period {0:?} is not HH:MM-HH:MM with start before end")]
    Period(String),
    /// A limit is not like `4h` or `3d`.
    #[error("time limit {0:?} is not a number of working hours (4h) or days (3d)")]
    Limit(String),
    /// The calendar has no working time at all.
    #[error("the working calendar has no working time")]
    NoWorkingTime,
}

/// Office hours and working days, in China Standard Time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkCalendar {
    /// Working periods of a working day, e.g. `["08:30-12:00", "14:30-18:00"]`.
    pub periods: Vec<String>,
    /// Public holidays (no work even on a weekday).
    pub holidays: Vec<NaiveDate>,
    /// Weekend days that are working days (调休).
    pub working_weekends: Vec<NaiveDate>,
    #[serde(skip)]
    parsed: Vec<(NaiveTime, NaiveTime)>,
    #[serde(skip)]
    holiday_set: HashSet<NaiveDate>,
    #[serde(skip)]
    working_weekend_set: HashSet<NaiveDate>,
}

impl Default for WorkCalendar {
    fn default() -> Self {
        Self {
            periods: vec!["08:30-12:00".into(), "14:30-18:00".into()],
            holidays: Vec::new(),
            working_weekends: Vec::new(),
            parsed: Vec::new(),
            holiday_set: HashSet::new(),
            working_weekend_set: HashSet::new(),
        }
    }
}

impl WorkCalendar {
    /// Checks the configuration and prepares it for use.
    pub fn prepare(mut self) -> Result<Self, DeadlineError> {
        self.parsed = self
            .periods
            .iter()
            .map(|p| {
                let bad = || DeadlineError::Period(p.clone());
                let (a, b) = p.split_once('-').ok_or_else(bad)?;
                let a = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
                let b = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?;
                if a >= b {
                    return Err(bad());
                }
                Ok((a, b))
            })
            .collect::<Result<_, _>>()?;
        self.parsed.sort();
        if self.parsed.is_empty() {
            return Err(DeadlineError::NoWorkingTime);
        }
        self.holiday_set = self.holidays.iter().copied().collect();
        self.working_weekend_set = self.working_weekends.iter().copied().collect();
        Ok(self)
    }

    /// Working minutes in one working day.
    pub fn minutes_per_day(&self) -> i64 {
        self.parsed
            .iter()
            .map(|(a, b)| (*b - *a).num_minutes())
            .sum()
    }

    /// Whether `day` is a working day.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.working_weekend_set.contains(&day) {
            return true;
        }
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.holiday_set.contains(&day)
    }

    /// The instant `minutes` of working time after `start`.
    pub fn add_working_minutes(&self, start: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        let tz = china();
        let local = start.with_timezone(&tz);
        let mut day = local.date_naive();
        let mut from = local.time();
        let mut left = minutes.max(0);
        // A year without a working minute would be a misconfiguration `prepare` refuses; the
        // bound keeps a pathological holiday list from looping for ever.
        for _ in 0..3660 {
            if self.is_working_day(day) {
                for &(a, b) in &self.parsed {
                    let begin = a.max(from);
                    if begin >= b {
                        continue;
                    }
                    let span = (b - begin).num_minutes();
                    if left <= span {
                        let at = day.and_time(begin) + Duration::minutes(left);
                        return tz
                            .from_local_datetime(&at)
                            .single()
                            .map_or(start, |t| t.with_timezone(&Utc));
                    }
                    left -= span;
                }
            }
            day = day.succ_opt().unwrap_or(day);
            from = NaiveTime::MIN;
        }
        start + Duration::minutes(minutes)
    }
}

/// Time limits per category, in working hours.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadlineRules {
    /// Limit for categories no rule names, e.g. `3d`.
    pub default: String,
    /// Limits by category prefix, longest prefix wins: `matter:06` (a major class),
    /// `matter:06001` (one class) or `component` (a kind).
    pub by_category: Vec<(String, String)>,
    /// The calendar the limits are counted on.
    pub calendar: WorkCalendar,
    #[serde(skip)]
    parsed: Vec<(String, i64)>,
    #[serde(skip)]
    default_minutes: i64,
}

impl Default for DeadlineRules {
    fn default() -> Self {
        Self {
            default: "3d".into(),
            by_category: vec![
                // Missing or broken covers, lamps and hydrants are hazards: same day.
                ("component".into(), "4h".into()),
                ("matter:01".into(), "4h".into()),
                ("matter:02".into(), "4h".into()),
                // Exposed garbage, spills, street order: one working day.
                ("matter:06".into(), "1d".into()),
                ("matter:09".into(), "1d".into()),
                // Construction and advertising need investigation.
                ("matter:07".into(), "5d".into()),
                ("matter:08".into(), "5d".into()),
            ],
            calendar: WorkCalendar::default(),
            parsed: Vec::new(),
            default_minutes: 0,
        }
    }
}

impl DeadlineRules {
    /// Checks the configuration and prepares it for use.
    pub fn prepare(mut self) -> Result<Self, DeadlineError> {
        self.calendar = self.calendar.prepare()?;
        let per_day = self.calendar.minutes_per_day();
        let minutes = |s: &str| -> Result<i64, DeadlineError> {
            let bad = || DeadlineError::Limit(s.to_string());
            let s = s.trim();
            let (n, unit) = s.split_at(s.len().saturating_sub(1));
            let n: i64 = n.trim().parse().map_err(|_| bad())?;
            if !(1..=1000).contains(&n) {
                return Err(bad());
            }
            match unit {
                "h" => Ok(n * 60),
                "d" => Ok(n * per_day),
                _ => Err(bad()),
            }
        };
        self.default_minutes = minutes(&self.default)?;
        self.parsed = self
            .by_category
            .iter()
            .map(|(prefix, limit)| Ok((prefix.clone(), minutes(limit)?)))
            .collect::<Result<_, DeadlineError>>()?;
        // Longest prefix first, so the first match is the most specific.
        self.parsed.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Ok(self)
    }

    /// The working-time limit of a category, in minutes.
    pub fn limit_minutes(&self, category: CategoryId) -> i64 {
        let id = category.text();
        self.parsed
            .iter()
            .find(|(p, _)| id.as_str().starts_with(p.as_str()))
            .map_or(self.default_minutes, |(_, m)| *m)
    }

    /// When a report of `category` made at `reported_at` is due.
    pub fn deadline(&self, category: CategoryId, reported_at: DateTime<Utc>) -> DateTime<Utc> {
        self.calendar
            .add_working_minutes(reported_at, self.limit_minutes(category))
    }

    /// The calendar in use.
    pub fn calendar(&self) -> &WorkCalendar {
        &self.calendar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn limits_count_working_time_only() {
        let rules = DeadlineRules::default().prepare().unwrap();
        let garbage = "matter:06002".parse().unwrap();
        let cover = "component:01001".parse().unwrap();
        let other = "matter:10001".parse().unwrap();
        // Friday 17:00 Beijing: one hour left that day, the rest on Monday.
        let fri = utc("2026-11-20T17:00:00+08:00");
        assert_eq!(rules.deadline(cover, fri), utc("2026-11-23T11:30:00+08:00"));
        // 1 working day = 7 h: Friday 17:00 + 7 h → Monday 17:00.
        assert_eq!(
            rules.deadline(garbage, fri),
            utc("2026-11-23T17:00:00+08:00")
        );
        // A report at night starts counting at 08:30; 3 days = 21 h.
        let night = utc("2026-11-23T22:00:00+08:00");
        assert_eq!(
            rules.deadline(other, night),
            utc("2026-11-26T18:00:00+08:00")
        );
    }

    #[test]
    fn holidays_and_makeup_days_shift_the_deadline() {
        let mut rules = DeadlineRules::default();
        rules.calendar.holidays = vec![NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()];
        rules.calendar.working_weekends = vec![NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()];
        let rules = rules.prepare().unwrap();
        let cover = "component:01001".parse().unwrap();
        let fri = utc("2026-11-20T17:00:00+08:00");
        // Saturday works, Monday is off.
        assert_eq!(rules.deadline(cover, fri), utc("2026-11-21T11:30:00+08:00"));
    }

    #[test]
    fn bad_configuration_is_refused() {
        let mut r = DeadlineRules {
            default: "3w".into(),
            ..DeadlineRules::default()
        };
        assert_eq!(
            r.clone().prepare().unwrap_err(),
            DeadlineError::Limit("3w".into())
        );
        r.default = "3d".into();
        r.calendar.periods = vec!["18:00-08:00".into()];
        assert!(matches!(r.prepare(), Err(DeadlineError::Period(_))));
    }
}
