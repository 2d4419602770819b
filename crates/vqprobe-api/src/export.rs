//! `GET /v1/agents/{agent_id}/conversations/export`: every call of an agent as RFC 4180
//! CSV or a JSON array, oldest first, streamed. A blocking task pages through the store
//! (`vqprobe_store::query::export`, a chunk of rows per read transaction) and hands
//! each encoded chunk to the socket over a bounded channel. The columns are the
//! store's export columns, so the CSV header, the JSON keys and the OpenAPI schema
//! all come from that one list.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};
use vqprobe_store::columns::{column, ExportColumn, Kind, EXPORT_COLUMNS};
use vqprobe_store::query::export::{Cell, ExportCursor};
use vqprobe_store::{CallStore, Scope, StoreError};

use super::body::{channel_body, ChunkSender};
use super::db::blocking;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::App;

/// Query of the export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` (default) or `json`.
    #[param(schema_with = format_schema, example = "csv")]
    pub format: Option<String>,
    /// Only this probe's calls (fleet aggregator only; a probe answers 400).
    pub probe_id: Option<String>,
}

fn format_schema() -> utoipa::openapi::schema::Object {
    crate::params::string_enum(&["csv", "json"])
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// Streams every call of an agent, oldest first.
#[utoipa::path(
    get,
    path = "/v1/agents/{agent_id}/conversations/export",
    tag = "calls",
    params(("agent_id" = String, Path, description = "Agent id"), ExportParams),
    responses(
        (status = 200, description = "RFC 4180 CSV with a header row (format=csv, the default) or a JSON array (format=json); an agent without calls gives only the header or `[]`",
            content(
                (String = "text/csv"),
                (Vec<ExportRow> = "application/json")
            )),
        (status = 400, description = "Unknown format", body = super::error::ErrorBody),
        (status = 401, description = "No valid key", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn export(
    State(app): State<Arc<App>>,
    ApiPath(agent_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let scope = super::params::scope(&app, params.probe_id.clone())?;
    let format = match params.format.as_deref() {
        None | Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format must be csv or json (got {other:?})"
            )))
        }
    };
    let (content_type, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
    };
    let disposition = format!(
        "attachment; filename=\"{}-conversations.{ext}\"",
        file_safe(&agent_id)
    );

    // The first chunk is read before answering, so an unreadable database is still a
    // proper error status rather than a broken download.
    let db = Arc::clone(&app.db);
    let agent = agent_id.clone();
    let first_scope = scope.clone();
    let (first, rest) = blocking(move || {
        let mut enc = Encoder::new(format)?;
        let next = write_chunk(db.as_ref(), &agent, &first_scope, None, &mut enc)?;
        let bytes = match next {
            Some(_) => enc.take()?,
            None => enc.finish()?,
        };
        Ok((bytes, next.map(|c| (c, enc))))
    })
    .await?;

    let (body, sender) = channel_body(first);
    if let Some((cursor, enc)) = rest {
        let db = Arc::clone(&app.db);
        tokio::task::spawn_blocking(move || {
            produce(db.as_ref(), &agent_id, &scope, cursor, enc, &sender)
        });
    }
    // Without more to come the sender is dropped here and the body ends after `first`.

    let mut resp = (StatusCode::OK, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Writes the chunks after the first until the agent's calls or the client run out.
fn produce(
    db: &dyn CallStore,
    agent_id: &str,
    scope: &Scope,
    mut cursor: ExportCursor,
    mut enc: Encoder,
    sender: &ChunkSender,
) {
    loop {
        let next = match write_chunk(db, agent_id, scope, Some(cursor), &mut enc) {
            Ok(next) => next,
            Err(e) => {
                eprintln!("vqprobe: api: export for agent {agent_id:?} stopped: {e}");
                sender.abort(e.to_string());
                return;
            }
        };
        let bytes = match next {
            Some(_) => enc.take(),
            None => enc.finish(),
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                sender.abort(e.to_string());
                return;
            }
        };
        if !sender.send(bytes) {
            return;
        }
        match next {
            Some(c) => cursor = c,
            None => return,
        }
    }
}

/// Encodes one chunk of the agent's calls after `after`.
fn write_chunk(
    db: &dyn CallStore,
    agent_id: &str,
    scope: &Scope,
    after: Option<ExportCursor>,
    enc: &mut Encoder,
) -> Result<Option<ExportCursor>, StoreError> {
    db.export_chunk(agent_id, scope, after, &mut |cells| {
        enc.row(cells)
            .map_err(|e| StoreError::Internal(e.to_string()))
    })
}

/// Turns rows into CSV (header first) or a JSON array, a chunk at a time.
enum Encoder {
    /// RFC 4180: CRLF line ends, fields quoted only when they must be.
    Csv(Box<csv::Writer<Vec<u8>>>),
    /// `[`, elements separated by `,`, `]` at the end.
    Json {
        /// Bytes not yet taken.
        buf: Vec<u8>,
        /// Whether an element has been written (so the next needs a comma).
        any: bool,
    },
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(256 * 1024))
}

fn csv_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("csv: {e}"))
}

fn json_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("json: {e}"))
}

/// A number as JSON writes it (shortest round-trip form, `80.0` for 80), so the CSV
/// and the JSON export show the same digits.
fn number(x: f64) -> String {
    serde_json::to_string(&x).unwrap_or_default()
}

impl Encoder {
    /// An encoder that has written the header (CSV) or the opening bracket (JSON).
    fn new(format: Format) -> Result<Encoder, ApiError> {
        Ok(match format {
            Format::Csv => {
                let mut w = csv_writer();
                w.write_record(EXPORT_COLUMNS.iter().map(|c| c.name()))
                    .map_err(csv_err)?;
                Encoder::Csv(Box::new(w))
            }
            Format::Json => Encoder::Json {
                buf: b"[".to_vec(),
                any: false,
            },
        })
    }

    /// One call, its cells in [`EXPORT_COLUMNS`] order.
    fn row(&mut self, cells: &[Cell<'_>]) -> Result<(), ApiError> {
        match self {
            Encoder::Csv(w) => {
                for cell in cells {
                    let field = match cell {
                        Cell::Null => String::new(),
                        Cell::Real(x) => number(*x),
                        Cell::Int(n) => n.to_string(),
                        Cell::Bool(b) => b.to_string(),
                        Cell::Text(t) => {
                            w.write_field(t).map_err(csv_err)?;
                            continue;
                        }
                    };
                    w.write_field(field).map_err(csv_err)?;
                }
                w.write_record(None::<&[u8]>).map_err(csv_err)
            }
            Encoder::Json { buf, any } => {
                if *any {
                    buf.push(b',');
                }
                *any = true;
                buf.push(b'{');
                for (i, (col, cell)) in EXPORT_COLUMNS.iter().zip(cells).enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    serde_json::to_writer(&mut *buf, col.name()).map_err(json_err)?;
                    buf.push(b':');
                    match cell {
                        Cell::Null => buf.extend_from_slice(b"null"),
                        Cell::Real(x) => serde_json::to_writer(&mut *buf, x).map_err(json_err)?,
                        Cell::Int(n) => serde_json::to_writer(&mut *buf, n).map_err(json_err)?,
                        Cell::Bool(b) => serde_json::to_writer(&mut *buf, b).map_err(json_err)?,
                        Cell::Text(t) => serde_json::to_writer(&mut *buf, t).map_err(json_err)?,
                    }
                }
                buf.push(b'}');
                Ok(())
            }
        }
    }

    /// The bytes encoded since the last take.
    fn take(&mut self) -> Result<Vec<u8>, ApiError> {
        match self {
            Encoder::Csv(w) => {
                // csv::Writer only gives its buffer up whole, so swap in a fresh one.
                let done = std::mem::replace(w.as_mut(), csv_writer());
                done.into_inner().map_err(csv_err)
            }
            Encoder::Json { buf, .. } => Ok(std::mem::take(buf)),
        }
    }

    /// The last bytes, closing the JSON array.
    fn finish(&mut self) -> Result<Vec<u8>, ApiError> {
        if let Encoder::Json { buf, .. } = self {
            buf.push(b']');
        }
        self.take()
    }
}

/// The OpenAPI schema of one exported call (a JSON array element), built from the
/// store's export columns: absent figures are JSON nulls (empty CSV fields).
pub struct ExportRow;

impl PartialSchema for ExportRow {
    fn schema() -> RefOr<Schema> {
        let mut obj = ObjectBuilder::new().description(Some(
            "One exported call; the columns of the CSV export, in the same order",
        ));
        for c in EXPORT_COLUMNS {
            let (ty, nullable) = match c {
                ExportColumn::Constant(..) => (Type::String, false),
                ExportColumn::Stored(name) => match column(name) {
                    Some(col) => (
                        match col.kind {
                            Kind::Text => Type::String,
                            Kind::Real => Type::Number,
                            Kind::Int => Type::Integer,
                            Kind::Bool => Type::Boolean,
                        },
                        !col.not_null,
                    ),
                    None => (Type::String, true),
                },
            };
            let schema_type = if nullable {
                utoipa::openapi::schema::SchemaType::from_iter([ty, Type::Null])
            } else {
                utoipa::openapi::schema::SchemaType::Type(ty)
            };
            obj = obj
                .property(c.name(), ObjectBuilder::new().schema_type(schema_type))
                .required(c.name());
        }
        RefOr::T(Schema::Object(obj.build()))
    }
}

impl ToSchema for ExportRow {}

/// An agent id made safe for a quoted `filename=` (RFC 6266): anything outside
/// `[A-Za-z0-9._-]` becomes `_`.
fn file_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(id: &str) -> Vec<Cell<'_>> {
        EXPORT_COLUMNS
            .iter()
            .map(|c| match c.name() {
                "call_id" => Cell::Text(id),
                "from_number" => Cell::Text("+44 7700, \"x\""),
                "duration_seconds" => Cell::Real(12.5),
                "r_factor" => Cell::Real(80.0),
                "transcript_text" => Cell::Text(""),
                _ => Cell::Null,
            })
            .collect()
    }

    #[test]
    fn csv_is_rfc4180_and_round_trips() {
        let mut enc = Encoder::new(Format::Csv).unwrap();
        enc.row(&cells("a")).unwrap();
        let mut out = enc.take().unwrap();
        enc.row(&cells("b\nc")).unwrap();
        out.extend(enc.finish().unwrap());
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("call_id,from_number,to_number,direction,status,"));
        assert!(text.contains("\"+44 7700, \"\"x\"\"\""), "{text}");
        assert!(text.contains(",80.0,"), "{text}");
        assert!(text.ends_with("\r\n"));
        assert_eq!(text.matches("\r\n").count(), 3, "{text}");
        let mut rd = csv::Reader::from_reader(out.as_slice());
        let back: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(&back[1][0], "b\nc");
        assert_eq!(back[0].len(), EXPORT_COLUMNS.len());
    }

    #[test]
    fn json_chunks_make_one_array() {
        let mut enc = Encoder::new(Format::Json).unwrap();
        enc.row(&cells("a")).unwrap();
        enc.row(&cells("b")).unwrap();
        let mut out = enc.take().unwrap();
        enc.row(&cells("c")).unwrap();
        out.extend(enc.take().unwrap());
        out.extend(enc.finish().unwrap());
        let back: Vec<serde_json::Value> = serde_json::from_slice(&out).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[2]["call_id"], "c");
        assert_eq!(back[0]["r_factor"], 80.0);
        assert!(back[0]["mno"].is_null());
        let mut empty = Encoder::new(Format::Json).unwrap();
        assert_eq!(empty.finish().unwrap(), b"[]");
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_safe("agent-7"), "agent-7");
        assert_eq!(file_safe("a\"b/../c"), "a_b_.._c");
        assert_eq!(file_safe(""), "_");
        assert_eq!(file_safe(".hidden"), "_.hidden");
    }
}
