//! OpenID Connect pieces shared by the providers: discovery, the JWKS cache, verification.
//!
//! Owns talking to an OpenID Provider's metadata and key endpoints, and the pure token checks.
//! Verification ([`verify`]) never does I/O; [`JwksCache`] is the only place keys are fetched,
//! [`MetadataCell`] the only place a provider's metadata is, and both are refreshed in the
//! background every [`METADATA_MAX_AGE`].

mod discovery;
mod jwks;
pub mod keys;
pub mod logout;
mod metadata;
pub mod verify;

/// Test keys and token minting, shared by the unit tests of this module.
#[cfg(test)]
#[path = "../../crates/testkit/src/tokens.rs"]
mod tokens;

pub use discovery::{discover, DiscoveryError, ProviderMetadata};
pub use jwks::{JwksCache, JwksError, METADATA_MAX_AGE};
pub use keys::{KeyFamily, KeySet, VerifyKey};
pub use logout::{LogoutClaims, LogoutError};
pub use metadata::{Discovered, MetadataCell, MetadataError, MetadataSource, RefreshTask};
pub use verify::{claim_text, Claims, Expectations, IssuerRule, VerifyError};
