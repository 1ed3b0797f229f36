//! Who is calling: the admin (one token for everything) or a client (its own token, good for its own heartbeat,
//! uploads and logs only). Tokens come as `Authorization: Bearer <token>`.

use uuid::Uuid;

use super::error::ApiError;

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Client(Uuid),
}

/// Compares without an early exit, so the time taken says nothing about where two tokens differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, ApiError> {
    let value = header.ok_or_else(|| ApiError::Unauthorized("send Authorization: Bearer <token>".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be Bearer <token>".into()))?;
    Ok(token)
}

impl Caller {
    pub fn require_admin(self) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            Self::Client(_) => Err(ApiError::Forbidden("this needs the admin token".into())),
        }
    }

    /// The admin, or the client itself.
    pub fn require_client(self, client: Uuid) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            Self::Client(c) if c == client => Ok(()),
            Self::Client(_) => Err(ApiError::Forbidden(
                "a client token is good for its own client only".into(),
            )),
        }
    }

    /// The actor recorded in the metadata of the events this caller causes.
    pub fn metadata(self) -> cairn_events::Metadata {
        match self {
            Self::Admin => cairn_events::Metadata::admin("admin"),
            Self::Client(id) => cairn_events::Metadata::client(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_required_and_compared_whole() {
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        assert!(bearer(None).is_err());
        assert!(bearer(Some("Basic abc")).is_err());
        assert!(bearer(Some("Bearer   ")).is_err());
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(Caller::Client(Uuid::nil()).require_admin().is_err());
        assert!(Caller::Client(Uuid::nil()).require_client(Uuid::max()).is_err());
        assert!(Caller::Admin.require_client(Uuid::max()).is_ok());
    }
}
