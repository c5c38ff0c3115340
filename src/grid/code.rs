//! Grid levels and grid codes (网格编码).
//!
//! Codes follow the national administrative numbering: a 6-digit county adcode (GB/T 2260),
//! then 3 digits per level below it. Parents are prefixes. Micro-grids and exclusive grids
//! extend the scheme so every code stays unambiguous and parseable:
//!
//! | level | form | example |
//! |---|---|---|
//! | district (区/县) | 6 digits | `410105` |
//! | level 1 (街道/乡镇) | 9 digits | `410105001` |
//! | level 2 (社区/村) | 12 digits | `410105001002` |
//! | level 3 (三级网格) | 15 digits | `410105001002007` |
//! | micro (微网格) | 18 digits: level-3 code + 3-digit sequence | `410105001002007003` |
//! | exclusive (专属网格) | owner code (6, 9 or 12 digits) + `Z` + 4 digits | `410105001Z0012` |

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A level of the grid hierarchy, from the district down to the micro-grid, plus the
/// exclusive grids (专属网格) that overlay the partition.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// County-level district (区/县/县级市).
    District,
    /// Level-1 grid: street or town (一级网格, 街道/乡镇).
    #[serde(rename = "1")]
    One,
    /// Level-2 grid: community or village (二级网格, 社区/村).
    #[serde(rename = "2")]
    Two,
    /// Level-3 grid, the unit responsible for what happens inside it (三级网格).
    #[serde(rename = "3")]
    Three,
    /// Micro-grid: one building or courtyard (微网格).
    Micro,
    /// Exclusive grid of a mall, park, school, hospital or industrial park (专属网格).
    Exclusive,
}

impl Level {
    /// Every level: the partition from the top down, then the exclusive overlay.
    pub const ALL: [Level; 6] = [
        Level::District,
        Level::One,
        Level::Two,
        Level::Three,
        Level::Micro,
        Level::Exclusive,
    ];

    /// The short name used in files and the CLI: `district`, `1`, `2`, `3`, `micro`, `exclusive`.
    pub fn name(self) -> &'static str {
        match self {
            Level::District => "district",
            Level::One => "1",
            Level::Two => "2",
            Level::Three => "3",
            Level::Micro => "micro",
            Level::Exclusive => "exclusive",
        }
    }

    /// The level directly above this one in the partition (none for districts and exclusive grids).
    pub fn parent(self) -> Option<Level> {
        match self {
            Level::District | Level::Exclusive => None,
            Level::One => Some(Level::District),
            Level::Two => Some(Level::One),
            Level::Three => Some(Level::Two),
            Level::Micro => Some(Level::Three),
        }
    }

    /// The level directly below this one in the partition.
    pub fn child(self) -> Option<Level> {
        match self {
            Level::District => Some(Level::One),
            Level::One => Some(Level::Two),
            Level::Two => Some(Level::Three),
            Level::Three => Some(Level::Micro),
            Level::Micro | Level::Exclusive => None,
        }
    }

    fn digits(self) -> Option<usize> {
        match self {
            Level::District => Some(6),
            Level::One => Some(9),
            Level::Two => Some(12),
            Level::Three => Some(15),
            Level::Micro => Some(18),
            Level::Exclusive => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Level {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "district" | "0" => Ok(Level::District),
            "1" | "one" | "street" => Ok(Level::One),
            "2" | "two" | "community" => Ok(Level::Two),
            "3" | "three" | "grid" => Ok(Level::Three),
            "micro" | "4" => Ok(Level::Micro),
            "exclusive" => Ok(Level::Exclusive),
            _ => Err(CodeError::UnknownLevel(s.to_string())),
        }
    }
}

/// Why a grid code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The code is empty.
    #[error("grid code is empty")]
    Empty,
    /// Characters other than digits (and the single `Z` of an exclusive code).
    #[error("grid code {0:?} must be digits (exclusive codes: owner digits, 'Z', 4 digits)")]
    BadCharacters(String),
    /// A digit count that is no level's.
    #[error("grid code {0:?} has {1} digits; expected 6, 9, 12, 15 or 18")]
    BadLength(String, usize),
    /// A 6-digit code ending in 00 names a city or province, not a district.
    #[error("grid code {0:?} names a city or province, not a district")]
    NotADistrict(String),
    /// A level name gridscope does not know.
    #[error("unknown grid level {0:?} (expected district, 1, 2, 3, micro or exclusive)")]
    UnknownLevel(String),
}

/// A validated grid code; its level and parent follow from its form.
///
/// ```
/// use gridscope::{GridCode, Level};
///
/// let grid = GridCode::parse("410105001002007").unwrap();
/// assert_eq!(grid.level(), Level::Three);
/// assert_eq!(grid.parent().unwrap().as_str(), "410105001002");
/// assert_eq!(grid.child(3).unwrap().level(), Level::Micro);
/// assert!(GridCode::parse("41010500100").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GridCode(Arc<str>);

impl GridCode {
    /// Parses and validates a code.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(CodeError::Empty);
        }
        if let Some((owner, seq)) = s.split_once(['Z', 'z']) {
            let owner_ok = matches!(owner.len(), 6 | 9 | 12) && all_digits(owner);
            if !owner_ok || seq.len() != 4 || !all_digits(seq) {
                return Err(CodeError::BadCharacters(s.to_string()));
            }
            return Ok(Self(format!("{owner}Z{seq}").into()));
        }
        if !all_digits(s) {
            return Err(CodeError::BadCharacters(s.to_string()));
        }
        match s.len() {
            6 if s.ends_with("00") => Err(CodeError::NotADistrict(s.to_string())),
            6 | 9 | 12 | 15 | 18 => Ok(Self(s.into())),
            n => Err(CodeError::BadLength(s.to_string(), n)),
        }
    }

    /// The code of a child: `self` followed by a 3-digit sequence number (1–999).
    pub fn child(&self, seq: u32) -> Result<Self, CodeError> {
        Self::parse(&format!("{}{seq:03}", self.0))
    }

    /// The code of the `seq`-th exclusive grid owned by this area (district, level 1 or 2).
    pub fn exclusive(&self, seq: u32) -> Result<Self, CodeError> {
        Self::parse(&format!("{}Z{seq:04}", self.0))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code as shared text: every report placed in this grid carries its code, and
    /// sharing it spares an allocation and a copy per report.
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// The level this code belongs to.
    pub fn level(&self) -> Level {
        if self.0.contains('Z') {
            return Level::Exclusive;
        }
        match self.0.len() {
            6 => Level::District,
            9 => Level::One,
            12 => Level::Two,
            15 => Level::Three,
            _ => Level::Micro,
        }
    }

    /// The parent's code by prefix: the owner of an exclusive grid, the level above otherwise.
    /// Districts have none. The parent may not exist in a given grid set (functional zones).
    pub fn parent(&self) -> Option<GridCode> {
        match self.level() {
            Level::District => None,
            Level::Exclusive => self.0.split_once('Z').map(|(o, _)| Self(o.into())),
            level => {
                let n = level.parent().and_then(Level::digits)?;
                Some(Self(self.0[..n].into()))
            }
        }
    }

    /// The 6-digit county adcode this code starts with.
    pub fn district_prefix(&self) -> &str {
        &self.0[..6]
    }

    /// Whether `self` is `other` or lies below it by prefix.
    pub fn is_within(&self, other: &GridCode) -> bool {
        self.0.starts_with(&*other.0)
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for GridCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for GridCode {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for GridCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for GridCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_parents_follow_from_the_code() {
        let g = GridCode::parse("410105001002007").unwrap();
        assert_eq!(g.level(), Level::Three);
        assert_eq!(g.parent().unwrap().as_str(), "410105001002");
        assert_eq!(g.parent().unwrap().parent().unwrap().level(), Level::One);
        let m = g.child(3).unwrap();
        assert_eq!(
            (m.as_str(), m.level()),
            ("410105001002007003", Level::Micro)
        );
        let e = GridCode::parse("410105001z0012").unwrap();
        assert_eq!(e.as_str(), "410105001Z0012");
        assert_eq!(e.level(), Level::Exclusive);
        assert_eq!(e.parent().unwrap().as_str(), "410105001");
        assert!(GridCode::parse("410105").unwrap().parent().is_none());
        assert!(g.is_within(&GridCode::parse("410105").unwrap()));
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in [
            "",
            "41010",
            "4101050010",
            "410100",
            "41010500100A",
            "410105Z12",
            "4101Z0001",
        ] {
            assert!(GridCode::parse(bad).is_err(), "{bad}");
        }
    }
}
