//! Queries as influx-proxy serves them: each statement checked against its whitelist
//! ([`super::influxql`]) and sent where its data is, the backends' answers passed through
//! (status, type, body) or, for a `SHOW` over a whole circle, merged.
//!
//! Unlike influx-proxy: a backend's status code and error reach the client as the backend
//! gave them; a circle is chosen among those whose backend for the measurement answers
//! (preferring one with nothing left to deliver to it, so that a write acknowledged and
//! delivered is read back), and a backend that cannot be reached sends the query to the
//! next circle; several statements are each routed on their own, their results joined.

use super::backend::Backend;
use super::influxql::{self, Merge, Refusal, Route};
use super::ProxyService;
use crate::client::Method;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// A `/query` request as the proxy forwards it.
#[derive(Debug, Clone, Default)]
pub struct QueryRequest {
    /// Every parameter of the request (URL and form body), but the credentials.
    pub params: Vec<(String, String)>,
    pub q: String,
    pub db: String,
    pub pretty: bool,
    /// The client's `Accept` (CSV answers).
    pub accept: Option<String>,
}

/// An answer to pass to the client.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// influx-proxy's refusals and failures of a query, in its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryFailure {
    /// `query forbidden`, `database not found`, `database forbidden: X`.
    Refused(String),
    /// `query error: ...`.
    Error(String),
}

impl ProxyService {
    pub async fn query(&self, request: &QueryRequest) -> Result<Answer, QueryFailure> {
        let statements = influxql::statements(&request.q);
        let mut checked = Vec::with_capacity(statements.len());
        for statement in &statements {
            match influxql::check(statement) {
                Ok(c) => checked.push(c),
                Err(Refusal::Forbidden) => {
                    return Err(QueryFailure::Refused("query forbidden".into()))
                }
                Err(Refusal::Illegal(e)) => return Err(QueryFailure::Error(e.to_string())),
            }
        }
        if checked.is_empty() {
            return Err(QueryFailure::Refused("query forbidden".into()));
        }
        let mut answers = Vec::with_capacity(checked.len());
        for (statement, c) in statements.iter().zip(&checked) {
            let db = match &c.altered_db {
                Some(db) => db.clone(),
                None if !request.db.is_empty() => request.db.clone(),
                None => c.named_db.clone().unwrap_or_default(),
            };
            let route_db = match &c.route {
                Route::Measurement { db: Some(d), .. } | Route::EveryOwner { db: Some(d), .. } => {
                    d.clone()
                }
                _ => db.clone(),
            };
            if !c.shows_databases {
                if route_db.is_empty() {
                    return Err(QueryFailure::Refused("database not found".into()));
                }
                for d in [&db, &route_db] {
                    if !d.is_empty() && !self.db_allowed(d) {
                        return Err(QueryFailure::Refused(format!("database forbidden: {d}")));
                    }
                }
            }
            let answer = self
                .statement(request, statement, &route_db, &c.route)
                .await?;
            let last = answers.is_empty() && checked.len() == 1;
            if last || !(200..300).contains(&answer.status) {
                return Ok(answer);
            }
            answers.push(answer);
        }
        Ok(join(&answers, request.pretty))
    }

    async fn statement(
        &self,
        request: &QueryRequest,
        statement: &str,
        db: &str,
        route: &Route,
    ) -> Result<Answer, QueryFailure> {
        match route {
            Route::Measurement { measurement, .. } => {
                let key = super::ring::placement_key(db, measurement);
                for backend in self.readable_owners(&key) {
                    match forward(&backend, request, statement, false).await {
                        Ok(answer) => return Ok(answer),
                        Err(e) => {
                            tracing::warn!(backend = %backend.name, error = %e, "query not answered; trying another circle");
                            backend.set_active(false);
                        }
                    }
                }
                Err(QueryFailure::Error("circles unavailable".into()))
            }
            Route::Circle { merge } => {
                'circles: for circle in self.readable_circles() {
                    let mut answers = Vec::new();
                    for backend in self.circle_backends(circle) {
                        match forward(&backend, request, statement, true).await {
                            Ok(a) if (200..300).contains(&a.status) => answers.push(a),
                            Ok(a) => return Ok(a),
                            Err(e) => {
                                tracing::warn!(backend = %backend.name, error = %e, "query not answered; trying another circle");
                                backend.set_active(false);
                                continue 'circles;
                            }
                        }
                    }
                    return merge_answers(*merge, &answers, request.pretty);
                }
                Err(QueryFailure::Error("circles unavailable".into()))
            }
            Route::EveryOwner { measurement, .. } => {
                let key = super::ring::placement_key(db, measurement);
                let mut last = None;
                for backend in self.owners(&key) {
                    let answer = forward(&backend, request, statement, false)
                        .await
                        .map_err(|e| QueryFailure::Error(e.to_string()))?;
                    if !(200..300).contains(&answer.status) || statement_failed(&answer) {
                        return Ok(answer);
                    }
                    last = Some(answer);
                }
                last.ok_or_else(|| QueryFailure::Error("no backend".into()))
            }
            Route::EveryBackend => {
                for id in 0..self.circles.len() {
                    if !self.circle_backends(id).iter().all(|b| b.is_active()) {
                        return Err(QueryFailure::Error(format!("circle {id} not health")));
                    }
                }
                let mut last = None;
                for backend in &self.backends {
                    let answer = forward(backend, request, statement, false)
                        .await
                        .map_err(|e| QueryFailure::Error(e.to_string()))?;
                    if !(200..300).contains(&answer.status) || statement_failed(&answer) {
                        return Ok(answer);
                    }
                    last = Some(answer);
                }
                last.ok_or_else(|| QueryFailure::Error("no backend".into()))
            }
        }
    }
}

/// Sends one statement to a backend: the client's parameters (but its credentials, which
/// are the proxy's), `q` this statement, as a form (POST). `merging` drops `chunked`, as
/// influx-proxy does for answers it merges.
async fn forward(
    backend: &Backend,
    request: &QueryRequest,
    statement: &str,
    merging: bool,
) -> Result<Answer, crate::client::ClientError> {
    let mut form: Vec<(&str, &str)> = request
        .params
        .iter()
        .filter(|(k, _)| k != "q" && k != "u" && k != "p" && !(merging && k == "chunked"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if merging {
        form.retain(|(k, _)| *k != "pretty");
    }
    form.push(("q", statement));
    let mut builder = backend.querier.request(Method::POST, "/query").form(&form);
    if let Some(accept) = &request.accept {
        if !merging {
            builder = builder.header("Accept", accept);
        }
    }
    let url = format!("{}/query", backend.url);
    let response = builder
        .send()
        .await
        .map_err(|e| crate::client::ClientError::Transport {
            url: url.clone(),
            message: e.to_string(),
            timeout: e.is_timeout(),
        })?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .bytes()
        .await
        .map_err(|e| crate::client::ClientError::Transport {
            url,
            message: e.to_string(),
            timeout: e.is_timeout(),
        })?;
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

/// A 200 whose statement failed (InfluxDB answers a failed statement inside a 200).
fn statement_failed(answer: &Answer) -> bool {
    serde_json::from_slice::<ResponseIn>(&answer.body)
        .map(|r| r.error.is_some() || r.results.iter().any(|x| x.error.is_some()))
        .unwrap_or(false)
}

#[derive(Deserialize)]
struct ResponseIn {
    #[serde(default)]
    results: Vec<ResultIn>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct ResultIn {
    #[serde(default)]
    series: Vec<SeriesOut>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct RawResult {
    series: Option<Box<RawValue>>,
    messages: Option<Box<RawValue>>,
    partial: Option<bool>,
    error: Option<String>,
}

#[derive(Serialize, Deserialize, Clone)]
struct SeriesOut {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    name: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    values: Vec<Vec<serde_json::Value>>,
}

#[derive(Serialize)]
struct ResultOut<S: Serialize> {
    statement_id: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    series: Option<S>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partial: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct ResponseOut<S: Serialize> {
    results: Vec<ResultOut<S>>,
}

/// JSON as influx-proxy writes it (Go's encoder: pretty with four spaces), and a newline.
pub(super) fn json_body<T: Serialize>(value: &T, pretty: bool) -> Bytes {
    let mut out = Vec::new();
    let written = match pretty {
        true => {
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
            value.serialize(&mut ser)
        }
        false => serde_json::to_writer(&mut out, value),
    };
    if written.is_err() {
        out = b"{}".to_vec();
    }
    out.push(b'\n');
    out.into()
}

fn json_answer<T: Serialize>(value: &T, pretty: bool) -> Answer {
    Answer {
        status: 200,
        content_type: Some("application/json".into()),
        body: json_body(value, pretty),
    }
}

/// One answer of several statements' answers: their results in order, numbered, up to
/// the first that failed.
fn join(answers: &[Answer], pretty: bool) -> Answer {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        results: Vec<RawResult>,
    }
    let mut results = Vec::new();
    'answers: for answer in answers {
        let raw: Raw = serde_json::from_slice(&answer.body).unwrap_or(Raw {
            results: Vec::new(),
        });
        for r in raw.results {
            let failed = r.error.is_some();
            results.push(ResultOut {
                statement_id: results.len(),
                series: r.series,
                messages: r.messages,
                partial: r.partial,
                error: r.error,
            });
            if failed {
                break 'answers;
            }
        }
    }
    json_answer(&ResponseOut { results }, pretty)
}

/// influx-proxy's reducers over the answers of a circle's backends. An answer that is not
/// a query's answer, or whose statement failed, is passed through as it came.
fn merge_answers(merge: Merge, answers: &[Answer], pretty: bool) -> Result<Answer, QueryFailure> {
    let mut parsed = Vec::with_capacity(answers.len());
    for a in answers {
        match serde_json::from_slice::<ResponseIn>(&a.body) {
            Ok(r) if r.error.is_none() && r.results.iter().all(|x| x.error.is_none()) => {
                parsed.push(r)
            }
            Ok(_) => return Ok(a.clone()),
            Err(e) => return Err(QueryFailure::Error(e.to_string())),
        }
    }
    let first_series = |r: &ResponseIn| -> Vec<SeriesOut> {
        r.results
            .first()
            .map(|x| x.series.clone())
            .unwrap_or_default()
    };
    let series: Vec<SeriesOut> = match merge {
        Merge::Values => {
            let mut template: Option<SeriesOut> = None;
            let mut values: BTreeMap<String, serde_json::Value> = BTreeMap::new();
            for s in parsed.iter().flat_map(first_series) {
                for v in &s.values {
                    if let Some(first) = v.first() {
                        let key = match first {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        values.insert(key, first.clone());
                    }
                }
                template = Some(s);
            }
            match template {
                Some(mut t) if !values.is_empty() => {
                    t.values = values.into_values().map(|v| vec![v]).collect();
                    t.columns.truncate(1);
                    vec![t]
                }
                _ => Vec::new(),
            }
        }
        Merge::Series => {
            let mut by_name: BTreeMap<String, SeriesOut> = BTreeMap::new();
            for s in parsed.iter().flat_map(first_series) {
                by_name.insert(s.name.clone().unwrap_or_default(), s);
            }
            by_name.into_values().collect()
        }
        Merge::Rows => {
            let mut template: Option<SeriesOut> = None;
            let mut rows: Vec<Vec<serde_json::Value>> = Vec::new();
            for s in parsed.iter().flat_map(first_series) {
                for v in &s.values {
                    if !rows.contains(v) {
                        rows.push(v.clone());
                    }
                }
                template.get_or_insert(s);
            }
            template
                .map(|mut t| {
                    t.values = rows;
                    vec![t]
                })
                .unwrap_or_default()
        }
        Merge::Results => {
            #[derive(Deserialize)]
            struct Raw {
                #[serde(default)]
                results: Vec<RawResult>,
            }
            let mut results = Vec::new();
            for a in answers {
                let raw: Raw = serde_json::from_slice(&a.body)
                    .map_err(|e| QueryFailure::Error(e.to_string()))?;
                for r in raw.results {
                    results.push(ResultOut {
                        statement_id: 0,
                        series: r.series,
                        messages: r.messages,
                        partial: r.partial,
                        error: r.error,
                    });
                }
            }
            return Ok(json_answer(&ResponseOut { results }, pretty));
        }
        Merge::Empty => Vec::new(),
    };
    let result = ResultOut {
        statement_id: 0,
        series: (!series.is_empty()).then_some(series),
        messages: None,
        partial: None,
        error: None,
    };
    Ok(json_answer(
        &ResponseOut {
            results: vec![result],
        },
        pretty,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> Answer {
        Answer {
            status: 200,
            content_type: Some("application/json".into()),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn merged(merge: Merge, bodies: &[&str]) -> String {
        let answers: Vec<Answer> = bodies.iter().map(|b| answer(b)).collect();
        let a = merge_answers(merge, &answers, false).unwrap();
        String::from_utf8(a.body.to_vec()).unwrap()
    }

    #[test]
    fn show_measurements_are_the_union_of_the_backends() {
        let a = r#"{"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["cpu"],["mem"]]}]}]}"#;
        let b = r#"{"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["disk"],["cpu"]]}]}]}"#;
        let empty = r#"{"results":[{"statement_id":0}]}"#;
        assert_eq!(
            merged(Merge::Values, &[a, b, empty]),
            "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"measurements\",\"columns\":[\"name\"],\"values\":[[\"cpu\"],[\"disk\"],[\"mem\"]]}]}]}\n"
        );
        assert_eq!(
            merged(Merge::Values, &[empty, empty]),
            "{\"results\":[{\"statement_id\":0}]}\n"
        );
    }

    #[test]
    fn field_keys_are_merged_by_measurement_and_policies_once_each() {
        let a = r#"{"results":[{"statement_id":0,"series":[{"name":"mem","columns":["fieldKey","fieldType"],"values":[["v","float"]]}]}]}"#;
        let b = r#"{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["fieldKey","fieldType"],"values":[["u","integer"]]}]}]}"#;
        let m = merged(Merge::Series, &[a, b]);
        assert!(
            m.find("\"cpu\"").unwrap() < m.find("\"mem\"").unwrap(),
            "{m}"
        );
        let rp = r#"{"results":[{"statement_id":0,"series":[{"columns":["name","duration","shardGroupDuration","replicaN","default"],"values":[["autogen","0s","168h0m0s",1,true]]}]}]}"#;
        let m = merged(Merge::Rows, &[rp, rp]);
        assert_eq!(m.matches("autogen").count(), 1, "{m}");
    }

    #[test]
    fn a_failed_statement_is_passed_through() {
        let err = r#"{"results":[{"statement_id":0,"error":"database not found: x"}]}"#;
        let ok = r#"{"results":[{"statement_id":0}]}"#;
        assert_eq!(merged(Merge::Values, &[ok, err]), err);
    }

    #[test]
    fn several_statements_are_joined_in_order_up_to_the_first_failure() {
        let a = answer(
            r#"{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","v"],"values":[[1,2]]}]}]}"#,
        );
        let b = answer(r#"{"results":[{"statement_id":0,"error":"boom"}]}"#);
        let c = answer(r#"{"results":[{"statement_id":0}]}"#);
        let j = join(&[a, b, c], false);
        assert_eq!(
            String::from_utf8(j.body.to_vec()).unwrap(),
            "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"cpu\",\"columns\":[\"time\",\"v\"],\"values\":[[1,2]]}]},{\"statement_id\":1,\"error\":\"boom\"}]}\n"
        );
    }
}
