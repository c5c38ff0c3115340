//! The national classification of urban-management components and matters (GB/T 47678.5-2026,
//! 管理部件和事项): every report names one class.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The classification shipped with gridscope (`data/categories/gbt-47678.5-2026.csv`).
const EMBEDDED_CSV: &str = include_str!("../../data/categories/gbt-47678.5-2026.csv");

/// Whether a class is a component (部件: a physical asset) or a matter (事项: an event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CategoryKind {
    /// 管理部件: a physical asset such as a manhole cover or a street lamp.
    Component,
    /// 管理事项: an event such as exposed garbage or illegal construction.
    Matter,
}

impl CategoryKind {
    /// The lowercase name used in category ids.
    pub fn name(self) -> &'static str {
        match self {
            CategoryKind::Component => "component",
            CategoryKind::Matter => "matter",
        }
    }
}

/// A class id such as `matter:06001`: the kind and the 5-digit code (2-digit major class plus
/// 3-digit minor class). Codes are unique only within a kind, hence both parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CategoryId {
    kind: CategoryKind,
    code: [u8; 5],
}

/// Why a category id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CategoryError {
    /// Not of the form `component:NNNNN` or `matter:NNNNN`.
    #[error("category {0:?} is not of the form component:NNNNN or matter:NNNNN")]
    Malformed(String),
    /// Well formed but not in the classification.
    #[error("category {0} is not in GB/T 47678.5")]
    Unknown(String),
}

impl CategoryId {
    /// The kind of class.
    pub fn kind(self) -> CategoryKind {
        self.kind
    }

    /// The 5-digit code.
    pub fn code(&self) -> &str {
        // The bytes are ASCII digits by construction.
        std::str::from_utf8(&self.code).unwrap_or("00000")
    }

    /// The 2-digit major class (大类).
    pub fn major(&self) -> &str {
        &self.code()[..2]
    }
}

impl FromStr for CategoryId {
    type Err = CategoryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || CategoryError::Malformed(s.to_string());
        let (kind, code) = s.split_once(':').ok_or_else(malformed)?;
        let kind = match kind {
            "component" => CategoryKind::Component,
            "matter" => CategoryKind::Matter,
            _ => return Err(malformed()),
        };
        let bytes = code.as_bytes();
        if bytes.len() != 5 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(malformed());
        }
        let mut code = [0u8; 5];
        code.copy_from_slice(bytes);
        Ok(CategoryId { kind, code })
    }
}

/// A category id as text held inline (`component:01001` at most), for the paths that write it
/// once per report and should not allocate to do so.
#[derive(Debug, Clone, Copy)]
pub struct CategoryText {
    bytes: [u8; 15],
    len: u8,
}

impl CategoryText {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Built from an ASCII kind name, a colon and ASCII digits.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl CategoryId {
    /// The id as text (`matter:06002`) without allocating.
    pub fn text(&self) -> CategoryText {
        let mut bytes = [0u8; 15];
        let mut len = 0;
        for part in [self.kind.name().as_bytes(), b":", &self.code] {
            bytes[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        CategoryText {
            bytes,
            len: len as u8,
        }
    }
}

impl fmt::Display for CategoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl Serialize for CategoryId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CategoryId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One class of the classification.
#[derive(Debug, Clone, Serialize)]
pub struct Category {
    /// Its id, e.g. `matter:06001`.
    pub id: CategoryId,
    /// Name of the major class (大类), e.g. 市容环境类.
    pub major_name: String,
    /// Name of the class (小类), e.g. 暴露垃圾.
    pub name: String,
}

/// The set of known classes, used to validate every report's category.
#[derive(Debug, Clone)]
pub struct Catalog {
    classes: Vec<Category>,
    by_id: HashMap<CategoryId, usize>,
}

/// Why a classification file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The CSV itself is malformed.
    #[error("classification CSV: {0}")]
    Csv(#[from] csv::Error),
    /// A row has a bad kind or code.
    #[error("classification CSV row {row}: {source}")]
    Row {
        /// 1-based data row.
        row: usize,
        /// What was wrong.
        source: CategoryError,
    },
}

#[derive(Deserialize)]
struct Row {
    code: String,
    kind: String,
    major_name: String,
    name: String,
}

impl Catalog {
    /// The classification embedded in the binary.
    pub fn embedded() -> Self {
        // The embedded file is checked by a unit test, so this cannot fail at run time.
        Self::from_csv(EMBEDDED_CSV.as_bytes()).unwrap_or_else(|_| Catalog {
            classes: Vec::new(),
            by_id: HashMap::new(),
        })
    }

    /// Reads a classification CSV with columns `code,kind,major_code,major_name,name`.
    pub fn from_csv(bytes: &[u8]) -> Result<Self, CatalogError> {
        let mut reader = csv::Reader::from_reader(bytes);
        let mut classes = Vec::new();
        for (i, row) in reader.deserialize::<Row>().enumerate() {
            let row = row?;
            let id: CategoryId = format!("{}:{}", row.kind, row.code)
                .parse()
                .map_err(|source| CatalogError::Row { row: i + 1, source })?;
            classes.push(Category {
                id,
                major_name: row.major_name,
                name: row.name,
            });
        }
        classes.sort_by_key(|c| c.id);
        let by_id = classes.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        Ok(Catalog { classes, by_id })
    }

    /// All classes, components first, in code order.
    pub fn classes(&self) -> &[Category] {
        &self.classes
    }

    /// The class with this id, if known.
    pub fn get(&self, id: CategoryId) -> Option<&Category> {
        self.by_id.get(&id).map(|&i| &self.classes[i])
    }

    /// Parses and checks a category id against the classification.
    pub fn validate(&self, s: &str) -> Result<CategoryId, CategoryError> {
        let id: CategoryId = s.parse()?;
        if self.by_id.contains_key(&id) {
            Ok(id)
        } else {
            Err(CategoryError::Unknown(s.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_classification_is_complete() {
        let c = Catalog::from_csv(EMBEDDED_CSV.as_bytes()).unwrap();
        assert_eq!(c.classes().len(), 403);
        let garbage = c.validate("matter:06001").unwrap();
        assert_eq!(c.get(garbage).unwrap().major_name, "市容环境类");
        assert!(c.validate("component:01001").is_ok());
        assert_eq!(
            c.validate("matter:01016"),
            Err(CategoryError::Unknown("matter:01016".into()))
        );
        assert!(matches!(
            c.validate("06001"),
            Err(CategoryError::Malformed(_))
        ));
        assert!(matches!(
            c.validate("matter:6001"),
            Err(CategoryError::Malformed(_))
        ));
    }

    #[test]
    fn every_class_reads_back_from_its_text() {
        let c = Catalog::from_csv(EMBEDDED_CSV.as_bytes()).unwrap();
        for class in c.classes() {
            let text = class.id.text();
            assert_eq!(text.as_str().parse::<CategoryId>(), Ok(class.id));
            assert_eq!(class.id.to_string(), text.as_str());
        }
    }
}
