//! Source locations for authored workflow files.
//!
//! Every value a user can get wrong is wrapped in [`Sp`], which remembers the
//! line and column it came from, so that validation can point at it. `Sp` is
//! transparent for serde (through serde-saphyr's `Spanned`) and for the JSON
//! Schema (it documents the inner type).

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer};

/// A 1-based line and column in a workflow file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Loc {
    pub line: u32,
    pub column: u32,
}

impl Loc {
    pub const UNKNOWN: Loc = Loc { line: 0, column: 0 };

    pub fn new(line: u32, column: u32) -> Self {
        Loc { line, column }
    }

    pub fn from_saphyr(location: &serde_saphyr::Location) -> Self {
        Loc {
            line: u32::try_from(location.line()).unwrap_or(u32::MAX),
            column: u32::try_from(location.column()).unwrap_or(u32::MAX),
        }
    }

    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A value with the location it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Sp<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Sp { value, loc }
    }

    pub fn as_ref(&self) -> Sp<&T> {
        Sp {
            value: &self.value,
            loc: self.loc,
        }
    }
}

impl<T> Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        // `referenced` is where the value is used (an alias site, if any);
        // that is the place a user looks for.
        let loc = Loc::from_saphyr(&spanned.referenced);
        Ok(Sp {
            value: spanned.value,
            loc,
        })
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}
