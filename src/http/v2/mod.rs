//! The InfluxDB 2 API a client needs, a file per resource: setup, orgs, buckets,
//! authorizations, backup, restore, remotes and replications. Handlers parse, authenticate, call the catalog's decisions through the control log and
//! render InfluxDB 2's JSON; every change is one control-log mutation.
//!
//! Every endpoint but setup checks InfluxDB 2's permissions (see [`crate::auth`]): a
//! permission is decided in the same catalog state the change is decided in, so a REVOKE
//! or DROP USER cannot slip between the check and the change. Objects the caller may not
//! read are not listed, and answered 404 as if absent; a change the caller may not make
//! is 403 `forbidden`, naming the permission as InfluxDB 2 does.

mod authorizations;
mod backup;
mod buckets;
mod flux;
mod orgs;
mod remotes;
mod replications;
mod restore;
mod setup;

use super::auth::authenticate_v2;
use super::error::ApiError;
use crate::auth::{Action, Principal, Resource, Wanted};
use crate::catalog::{Catalog, CatalogError};
use crate::node::Node;
use crate::projection::ProjectionError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use std::collections::HashMap;

pub(super) fn routes(r: &mut super::Routes) {
    setup::routes(r);
    orgs::routes(r);
    buckets::routes(r);
    authorizations::routes(r);
    flux::routes(r);
    backup::routes(r);
    restore::routes(r);
    remotes::routes(r);
    replications::routes(r);
}

#[derive(Debug, thiserror::Error)]
enum V2Error {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The permission the caller lacks, as InfluxDB 2 names it.
    #[error("{0} is unauthorized")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<V2Error> for ApiError {
    fn from(e: V2Error) -> Self {
        let status = match &e {
            V2Error::Catalog(CatalogError::AlreadySetUp) => StatusCode::UNPROCESSABLE_ENTITY,
            V2Error::Catalog(
                CatalogError::OrgExists(_)
                | CatalogError::BucketExists(_)
                | CatalogError::UserExists,
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            V2Error::Catalog(
                CatalogError::OrgNotFound
                | CatalogError::BucketNotFound
                | CatalogError::UserNotFound
                | CatalogError::AuthorizationNotFound,
            ) => StatusCode::NOT_FOUND,
            V2Error::Catalog(_) | V2Error::Invalid(_) => StatusCode::BAD_REQUEST,
            V2Error::Forbidden(_) => StatusCode::FORBIDDEN,
            V2Error::Projection(e) => super::error::control_log_status(e),
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<crate::replication::ReplicationServiceError> for ApiError {
    fn from(e: crate::replication::ReplicationServiceError) -> Self {
        use crate::control::replications::ReplicationError as D;
        use crate::replication::ReplicationServiceError as E;
        let status = match &e {
            E::Decision(D::RemoteNotFound | D::ReplicationNotFound | D::OrgNotFound) => {
                StatusCode::NOT_FOUND
            }
            E::Decision(D::BucketNotFound | D::Invalid(_)) | E::Validation(_) => {
                StatusCode::BAD_REQUEST
            }
            E::Decision(D::Conflict(_)) => StatusCode::CONFLICT,
            E::Forbidden(_) => StatusCode::FORBIDDEN,
            E::Projection(e) => super::error::control_log_status(e),
            E::Log(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Refuses unless the caller holds `wanted`.
fn require(c: &Catalog, caller: Option<&Principal>, wanted: Wanted) -> Result<(), V2Error> {
    match caller {
        Some(p) if !p.holds(c, &wanted) => Err(V2Error::Forbidden(wanted.describe())),
        _ => Ok(()),
    }
}

fn may(c: &Catalog, caller: Option<&Principal>, wanted: Wanted) -> bool {
    caller.is_none_or(|p| p.holds(c, &wanted))
}

/// Creating and deleting buckets and organizations needs the permission over the whole
/// organization (or every organization), which only admins hold: a grant on a database
/// lets a user read or write its data, not remove it.
fn org_wide(action: Action, resource: Resource, org_id: Option<&str>) -> Wanted<'_> {
    Wanted {
        action,
        resource,
        org_id,
        id: None,
    }
}

/// A client's count of `unit_seconds`-second units as nanoseconds: negative and
/// overflowing values are the client's mistake, refused rather than wrapped.
fn duration_nanos(count: i64, unit_seconds: i64, what: &str) -> Result<i64, ApiError> {
    if count < 0 {
        return Err(ApiError::bad_request(format!(
            "{what} must not be negative, got {count}"
        )));
    }
    let max = i64::MAX / 1_000_000_000 / unit_seconds;
    count
        .checked_mul(unit_seconds * 1_000_000_000)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{what} {count} is too large: at most {max} (about 292 years)"
            ))
        })
}

fn reply(result: Result<HttpResponse, ApiError>) -> HttpResponse {
    result.unwrap_or_else(|e| e.v2())
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// Authenticates, then applies a deletion decided (and authorized) on the catalog: 204,
/// or 404 when the object does not exist or the caller may not see it.
async fn delete(
    node: &Node,
    req: &HttpRequest,
    params: &HashMap<String, String>,
    decide: impl FnOnce(&Catalog, Option<&Principal>) -> Result<Vec<crate::proto::Event>, V2Error>,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(node, req, params).await?;
            node.control
                .mutate(|c| Ok::<_, V2Error>((decide(&c.catalog, caller.as_ref())?, ())))
                .await
                .map_err(ApiError::from)?;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}
