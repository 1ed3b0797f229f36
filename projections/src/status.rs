//! The statuses of the read tables, as enums from the row to the API: stored as their names (the old
//! server's spelling), parsed back when read, refused when a filter names none of them.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::QueryError;

macro_rules! status {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every status, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in the table and sent by the API.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant)),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = QueryError;
            fn from_str(s: &str) -> Result<Self, QueryError> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| QueryError::Filter {
                    field: "status",
                    reason: format!(
                        "one of {}",
                        Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                })
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                text.parse().map_err(|e: QueryError| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

status! {
    /// Where a client stands: registered and never seen, connected (heartbeats arrive), or offline.
    ClientStatus { Registered, Connected, Offline }
}

status! {
    /// Where a transfer stands: under way, or ended one way or the other (once).
    TransferStatus { InProgress, Completed, Failed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_what_they_write_and_refuse_other_names() {
        for s in ClientStatus::ALL {
            assert_eq!(s.as_str().parse::<ClientStatus>().unwrap(), *s);
        }
        for s in TransferStatus::ALL {
            assert_eq!(s.to_string().parse::<TransferStatus>().unwrap(), *s);
        }
        let err = "connected".parse::<ClientStatus>().unwrap_err().to_string();
        assert!(err.contains("Registered, Connected, Offline"), "{err}");
        assert_eq!(serde_json::to_value(TransferStatus::InProgress).unwrap(), "InProgress");
    }
}
