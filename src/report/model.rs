//! The small value types of a report: its id, intake channel, status and rating.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A report's id: assigned by the store in creation order, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReportId(pub i64);

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Defines a closed set of snake_case names with parsing, display and serde, so every enum that
/// crosses the API or the store has exactly one spelling.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in lifecycle or documentation order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case name used in the API and the store.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName {
                        what: stringify!($name),
                        given: s.to_string(),
                        expected: $name::ALL.iter().map(|v| v.name()).collect(),
                    }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A name that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?} (expected one of: {})", expected.join(", "))]
pub struct UnknownName {
    /// Which enum.
    pub what: &'static str,
    /// What was given.
    pub given: String,
    /// The accepted names.
    pub expected: Vec<&'static str>,
}

named_enum! {
    /// Where a report came in (上报渠道).
    Channel {
        /// Citizen app (随手拍, e.g. 郑好拍).
        App => "app",
        /// The 12345 government service hotline.
        Hotline12345 => "hotline_12345",
        /// Non-police matters passed on by 110.
        Police110 => "police_110",
        /// A grid worker's patrol (巡查上报).
        Patrol => "patrol",
        /// Video analytics / AI detection.
        VideoAi => "video_ai",
        /// An IoT sensor (manhole cover tilt, water level...).
        Iot => "iot",
    }
}

named_enum! {
    /// Where a report is in its lifecycle.
    Status {
        /// 上报: received, not yet reviewed.
        Reported => "reported",
        /// 立案: accepted as a case, waiting for dispatch.
        Accepted => "accepted",
        /// 不予立案: not accepted (duplicate, out of scope...); final.
        Rejected => "rejected",
        /// 派遣: dispatched to a grid (or, after escalation, a higher-level unit).
        Dispatched => "dispatched",
        /// 处置: the responsible unit says it is handled; waiting for the check.
        Handled => "handled",
        /// 结案: the check passed; final (a rating may still follow).
        Closed => "closed",
    }
}

impl Status {
    /// Whether nothing more is expected of the responsible unit.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Rejected | Status::Closed)
    }
}

named_enum! {
    /// The reporter's satisfaction (评价).
    Rating {
        /// 满意.
        Satisfied => "satisfied",
        /// 基本满意.
        Basically => "basically_satisfied",
        /// 不满意.
        Unsatisfied => "unsatisfied",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for s in Status::ALL {
            assert_eq!(s.name().parse::<Status>().unwrap(), *s);
        }
        let e = "closed!".parse::<Status>().unwrap_err();
        assert!(e.to_string().contains("reported, accepted"), "{e}");
        let c: Channel = serde_json::from_str("\"hotline_12345\"").unwrap();
        assert_eq!(c, Channel::Hotline12345);
        assert!(serde_json::from_str::<Channel>("\"fax\"").is_err());
    }
}
