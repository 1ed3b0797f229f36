//! Who is calling: the admin (one token for everything) or a client (its own token, good for its own heartbeat,
//! uploads and logs only). Both adapters authenticate through [`authenticate`]; the HTTP API with the
//! `Authorization: Bearer` header, the live feed also with `?token=` for browsers.

use uuid::Uuid;

use super::{ServiceError, Services};

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Client(Uuid),
}

impl Caller {
    pub fn require_admin(self) -> Result<(), ServiceError> {
        match self {
            Self::Admin => Ok(()),
            Self::Client(_) => Err(ServiceError::Forbidden("this needs the admin token".into())),
        }
    }

    /// The admin, or the client itself.
    pub fn require_client(self, client: Uuid) -> Result<(), ServiceError> {
        match self {
            Self::Admin => Ok(()),
            Self::Client(c) if c == client => Ok(()),
            Self::Client(_) => Err(ServiceError::Forbidden(
                "a client token is good for its own client only".into(),
            )),
        }
    }

    /// The client a client token belongs to; `None` for the admin.
    pub fn client(self) -> Option<Uuid> {
        match self {
            Self::Admin => None,
            Self::Client(id) => Some(id),
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

/// Compares without an early exit, so the time taken says nothing about where two tokens differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization` header's value, which must read `Bearer <token>`.
pub fn bearer(header: Option<&str>) -> Result<&str, ServiceError> {
    let value = header.ok_or_else(|| ServiceError::Unauthorized("send Authorization: Bearer <token>".into()))?;
    // The scheme's name is case-insensitive (RFC 9110 §11.1).
    value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ServiceError::Unauthorized("the Authorization header must be Bearer <token>".into()))
}

/// The admin token, compared in constant time; otherwise a client token, looked up by its hash.
pub async fn authenticate(services: &Services, token: &str) -> Result<Caller, ServiceError> {
    if constant_time_eq(token.as_bytes(), services.config.admin_token.as_bytes()) {
        return Ok(Caller::Admin);
    }
    let hash = crate::commands::token_hash(token);
    let wanted = hash.clone();
    let found = services
        .read(move |conn| Ok(cairn_projections::clients::by_token_hash(conn, &wanted)?))
        .await?;
    match found {
        Some((id, stored)) if constant_time_eq(stored.as_bytes(), hash.as_bytes()) => {
            let id = Uuid::parse_str(&id).map_err(ServiceError::internal)?;
            // Every request a client's token makes is a sign of life.
            services.presence.seen(id);
            Ok(Caller::Client(id))
        }
        _ => Err(ServiceError::Unauthorized("the token is not valid".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_required_and_compared_whole() {
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(Some("BEARER abc")).unwrap(), "abc");
        assert_eq!(bearer(Some("bEaReR  abc ")).unwrap(), "abc");
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
