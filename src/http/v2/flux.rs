//! `/api/v2/query`: Flux, which shardkeeper does not serve (InfluxDB 3 dropped it too). The
//! v2 client libraries' query APIs send Flux here; they get InfluxDB 2's JSON error shape
//! saying where InfluxQL is served, rather than a bare 404 they report as a parse failure.

use crate::http::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

pub(super) fn routes(r: &mut crate::http::Routes) {
    use actix_web::http::Method;
    r.add(Method::POST, "/api/v2/query", flux);
}

/// Answered to any caller: it reads nothing and reveals nothing.
async fn flux() -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "Flux is not supported: send InfluxQL to /query (the client libraries' \
         v1-compatible query API)",
    )
    .v2()
}
