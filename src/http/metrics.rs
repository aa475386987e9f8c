//! `GET /metrics`, and how answers and errors become the fixed label values of [`crate::metrics`].
//!
//! Served on the main port. That exposes it to nothing outside the cluster: the only Ingress
//! in front of authgate is the `/oauth2` one, which rewrites every path to
//! `/oauth2/<action>/<workspace>` and so cannot reach `/metrics`, and the authgate
//! NetworkPolicy admits only ingress-nginx and the optional Prometheus component to the
//! Service. Owns the mapping from [`AppError`] to [`Decision`] and [`LoginFailure`]; never
//! turns an error's text into a label.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppError;
use crate::metrics::{self, Decision, DecisionCounters, LoginFailure};
use crate::provider::ProviderError;
use crate::state::AppState;

use super::Incoming;

/// `GET /metrics`: every metric in the Prometheus text format; 404 when metrics are off.
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    if !state.metrics().enabled() {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics().encode(),
    )
        .into_response()
}

/// What an `/oauth2/auth` answer counts as.
pub(super) fn decision<T, E: std::borrow::Borrow<AppError>>(result: &Result<T, E>) -> Decision {
    match result.as_ref().map_err(|e| e.borrow()) {
        Ok(_) => Decision::Allowed,
        Err(AppError::HostRefused(_) | AppError::Tenant(_)) => Decision::RefusedHost,
        Err(e) if e.status() == StatusCode::FORBIDDEN => Decision::Forbidden,
        Err(_) => Decision::Unauthenticated,
    }
}

/// Where a request no workspace could judge is counted: under the workspace its route names
/// when the config has it (or the only one), else under [`metrics::UNKNOWN`] — never under a
/// name the client wrote.
pub(super) fn refusal_counters<'a>(req: &'a Incoming, state: &'a AppState) -> &'a DecisionCounters {
    let named = match (req.pinned.as_deref(), req.registry.workspaces.as_slice()) {
        (Some(name), _) => req.registry.by_name(name),
        (None, [only]) => Some(only),
        (None, _) => None,
    };
    match named {
        Some(ws) => &ws.metrics.decisions,
        None => state.metrics().unknown_workspace(),
    }
}

/// The `reason` a failed login is counted under.
pub(super) fn login_failure(e: &AppError) -> LoginFailure {
    use AppError::*;
    match e {
        StateMissing | LoginState(_) | StateReplayed => LoginFailure::State,
        ProviderDenied { .. } => LoginFailure::ProviderError,
        CodeMissing => LoginFailure::CodeMissing,
        UnknownProvider(_) => LoginFailure::UnknownProvider,
        Provider(ProviderError::Unavailable(_)) => LoginFailure::ProviderUnavailable,
        Provider(ProviderError::IssuerMismatch(_)) => LoginFailure::IssuerMismatch,
        Provider(ProviderError::Exchange(_)) => LoginFailure::ExchangeRefused,
        Provider(ProviderError::Token(_)) => LoginFailure::TokenRejected,
        Provider(ProviderError::Incomplete(_))
        | Identity(_)
        | SessionNotIssued(_)
        | Encode(_)
        | SessionTooLarge => LoginFailure::IdentityUnusable,
        LoginDenied(_) | Forbidden(_) => LoginFailure::Denied,
        TooManyLogins(_) | ClientBusy(_) => LoginFailure::TooManyLogins,
        StoreUnavailable => LoginFailure::StoreUnavailable,
        HostRefused(_) | Tenant(_) | Unauthenticated(_) | Bearer(_) => LoginFailure::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Denial;
    use crate::forward::HostError;
    use crate::session::SessionError;
    use crate::workspace::TenantError;

    #[test]
    fn auth_errors_map_to_their_decision() {
        let cases: Vec<(Result<(), AppError>, Decision)> = vec![
            (Ok(()), Decision::Allowed),
            (
                Err(AppError::Unauthenticated(SessionError::Missing)),
                Decision::Unauthenticated,
            ),
            (
                Err(AppError::Unauthenticated(SessionError::StoreUnavailable)),
                Decision::Unauthenticated,
            ),
            (
                Err(AppError::Bearer(crate::workspace::BearerError::NoVerifier)),
                Decision::Unauthenticated,
            ),
            (Err(AppError::Forbidden(Denial::Group)), Decision::Forbidden),
            (
                Err(AppError::Tenant(TenantError::UnknownWorkspace("x".into()))),
                Decision::RefusedHost,
            ),
            (
                Err(AppError::HostRefused(HostError::Missing)),
                Decision::RefusedHost,
            ),
        ];
        for (result, want) in cases {
            assert_eq!(decision(&result), want, "{result:?}");
        }
    }

    #[test]
    fn login_errors_map_to_a_fixed_reason_whatever_their_text() {
        let cases = [
            (AppError::StateReplayed, LoginFailure::State),
            (
                AppError::ProviderDenied {
                    error: "access_denied".into(),
                    description: None,
                },
                LoginFailure::ProviderError,
            ),
            (
                AppError::Provider(ProviderError::Unavailable("timeout".into())),
                LoginFailure::ProviderUnavailable,
            ),
            (
                AppError::Provider(ProviderError::Exchange("invalid_grant".into())),
                LoginFailure::ExchangeRefused,
            ),
            (
                AppError::LoginDenied(crate::authz::Denial::Email("user@example.com".into())),
                LoginFailure::Denied,
            ),
            (AppError::StoreUnavailable, LoginFailure::StoreUnavailable),
            (
                AppError::UnknownProvider("evil".into()),
                LoginFailure::UnknownProvider,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(login_failure(&e), want, "{e:?}");
        }
    }
}
