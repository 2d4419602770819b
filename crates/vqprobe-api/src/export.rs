//! `GET /v1/agents/{agent_id}/conversations/export`: every call of an agent as RFC 4180
//! CSV or a JSON array, oldest first, streamed. A blocking task pages through SQLite
//! ([`CHUNK_ROWS`] rows per read transaction, so the daemon's writer and WAL
//! checkpoints are never held up by a long download) and hands each chunk to the
//! socket over a bounded channel.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::body::{channel_body, ChunkSender};
use super::db::{blocking, Db};
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::App;

/// Rows read per chunk.
pub const CHUNK_ROWS: i64 = 1000;

/// Export columns, in order: the peer products' conversation columns (the transcript
/// is always empty: a probe has no audio-to-text), then vqprobe's quality columns.
pub const COLUMNS: [&str; 17] = [
    "call_id",
    "from_number",
    "to_number",
    "direction",
    "status",
    "duration_seconds",
    "created_at",
    "transcript_text",
    "quality_mos",
    "mos_lq",
    "r_factor",
    "min_interval_mos",
    "jitter_ms",
    "loss_ratio",
    "rtt_ms",
    "mno",
    "codec",
];

/// One exported call (a CSV row or a JSON array element); absent figures are empty
/// CSV fields and JSON nulls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExportRow {
    /// vqprobe's call id.
    pub call_id: String,
    /// Caller's number.
    pub from_number: Option<String>,
    /// Callee's number.
    pub to_number: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `in_progress`, `completed`, `failed` or `abandoned`.
    pub status: String,
    /// Talk time, seconds.
    pub duration_seconds: f64,
    /// Start, RFC 3339 UTC.
    pub created_at: String,
    /// Always empty: vqprobe does not transcribe.
    pub transcript_text: String,
    /// Conversational MOS of the worst direction.
    pub quality_mos: Option<f64>,
    /// Listening MOS of the worst direction.
    pub mos_lq: Option<f64>,
    /// R-factor of the worst direction.
    pub r_factor: Option<f64>,
    /// Lowest 5-second MOS.
    pub min_interval_mos: Option<f64>,
    /// Largest RFC 3550 jitter, ms.
    pub jitter_ms: Option<f64>,
    /// Largest loss ratio, 0–1.
    pub loss_ratio: Option<f64>,
    /// Round trip from RTCP, ms.
    pub rtt_ms: Option<f64>,
    /// Mobile network operator.
    pub mno: String,
    /// Codec.
    pub codec: Option<String>,
}

/// Query of the export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` (default) or `json`.
    #[param(value_type = Option<String>, example = "csv")]
    pub format: Option<String>,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// Where the next chunk starts: after this `(created_at_ms, rowid)`.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    created_at_ms: i64,
    rowid: i64,
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
    let (first, rest) = blocking(move || {
        let mut enc = Encoder::new(format)?;
        let next = db.read_blocking(|s| write_chunk(s.conn(), &agent, None, &mut enc))?;
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
        tokio::task::spawn_blocking(move || produce(&db, &agent_id, cursor, enc, &sender));
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
fn produce(db: &Db, agent_id: &str, mut cursor: Cursor, mut enc: Encoder, sender: &ChunkSender) {
    loop {
        let next =
            match db.read_blocking(|s| write_chunk(s.conn(), agent_id, Some(cursor), &mut enc)) {
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

impl Encoder {
    /// An encoder that has written the header (CSV) or the opening bracket (JSON).
    fn new(format: Format) -> Result<Encoder, ApiError> {
        Ok(match format {
            Format::Csv => {
                let mut w = csv_writer();
                w.write_record(COLUMNS).map_err(csv_err)?;
                Encoder::Csv(Box::new(w))
            }
            Format::Json => Encoder::Json {
                buf: b"[".to_vec(),
                any: false,
            },
        })
    }

    fn row<R: Serialize>(&mut self, r: &R) -> Result<(), ApiError> {
        match self {
            Encoder::Csv(w) => w.serialize(r).map_err(csv_err),
            Encoder::Json { buf, any } => {
                if *any {
                    buf.push(b',');
                }
                *any = true;
                serde_json::to_writer(&mut *buf, r)
                    .map_err(|e| ApiError::Internal(format!("json: {e}")))
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

/// An export row borrowed from the SQLite row it was read from, encoded without
/// copying its text.
#[derive(Serialize)]
struct RowRef<'a> {
    call_id: &'a str,
    from_number: Option<&'a str>,
    to_number: Option<&'a str>,
    direction: &'a str,
    status: &'a str,
    duration_seconds: f64,
    created_at: &'a str,
    transcript_text: &'static str,
    quality_mos: Option<f64>,
    mos_lq: Option<f64>,
    r_factor: Option<f64>,
    min_interval_mos: Option<f64>,
    jitter_ms: Option<f64>,
    loss_ratio: Option<f64>,
    rtt_ms: Option<f64>,
    mno: &'a str,
    codec: Option<&'a str>,
}

fn opt_text<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'a str>> {
    match r.get_ref(i)? {
        ValueRef::Null => Ok(None),
        v => v.as_str().map(Some).map_err(rusqlite::Error::from),
    }
}

fn text<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'a str> {
    r.get_ref(i)?.as_str().map_err(rusqlite::Error::from)
}

/// Encodes up to [`CHUNK_ROWS`] calls of the agent after `after`, in
/// `(created_at_ms, rowid)` order (rowid breaks ties and never changes for a call:
/// upserts update in place); returns where the next chunk starts, `None` at the end.
fn write_chunk(
    conn: &Connection,
    agent_id: &str,
    after: Option<Cursor>,
    enc: &mut Encoder,
) -> Result<Option<Cursor>, ApiError> {
    let (from_ms, from_rowid) = after.map_or((i64::MIN, i64::MIN), |c| (c.created_at_ms, c.rowid));
    // The range on created_at_ms uses the (agent_id, created_at_ms) index; the OR only
    // filters the rare calls that share the cursor's millisecond.
    let mut stmt = conn.prepare_cached(
        "SELECT call_id, from_number, to_number, direction, status, duration_seconds, \
         created_at, quality_mos, mos_lq, r_factor, min_interval_mos, jitter_ms, \
         loss_ratio, rtt_ms, mno, codec, created_at_ms, rowid \
         FROM calls WHERE agent_id = ?1 AND created_at_ms >= ?2 \
         AND (created_at_ms > ?2 OR rowid > ?3) \
         ORDER BY created_at_ms, rowid LIMIT ?4",
    )?;
    let mut rows = stmt.query(rusqlite::params![agent_id, from_ms, from_rowid, CHUNK_ROWS])?;
    let mut n = 0;
    let mut cursor = None;
    while let Some(r) = rows.next()? {
        enc.row(&RowRef {
            call_id: text(r, 0)?,
            from_number: opt_text(r, 1)?,
            to_number: opt_text(r, 2)?,
            direction: text(r, 3)?,
            status: text(r, 4)?,
            duration_seconds: r.get(5)?,
            created_at: text(r, 6)?,
            transcript_text: "",
            quality_mos: r.get(7)?,
            mos_lq: r.get(8)?,
            r_factor: r.get(9)?,
            min_interval_mos: r.get(10)?,
            jitter_ms: r.get(11)?,
            loss_ratio: r.get(12)?,
            rtt_ms: r.get(13)?,
            mno: text(r, 14)?,
            codec: opt_text(r, 15)?,
        })?;
        n += 1;
        cursor = Some(Cursor {
            created_at_ms: r.get(16)?,
            rowid: r.get(17)?,
        });
    }
    Ok(cursor.filter(|_| n == CHUNK_ROWS))
}

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

    fn row(id: &str) -> ExportRow {
        ExportRow {
            call_id: id.into(),
            from_number: Some("+44 7700, \"x\"".into()),
            to_number: None,
            direction: "inbound".into(),
            status: "completed".into(),
            duration_seconds: 12.5,
            created_at: "2026-04-10T12:00:00.000Z".into(),
            transcript_text: String::new(),
            quality_mos: Some(4.1),
            mos_lq: None,
            r_factor: Some(80.0),
            min_interval_mos: None,
            jitter_ms: None,
            loss_ratio: Some(0.01),
            rtt_ms: None,
            mno: "Vodafone UK".into(),
            codec: Some("PCMU".into()),
        }
    }

    #[test]
    fn csv_is_rfc4180_and_round_trips() {
        let mut enc = Encoder::new(Format::Csv).unwrap();
        enc.row(&row("a")).unwrap();
        let mut out = enc.take().unwrap();
        enc.row(&row("b\nc")).unwrap();
        out.extend(enc.finish().unwrap());
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("call_id,from_number,to_number,direction,status,"));
        assert!(text.contains("\"+44 7700, \"\"x\"\"\""), "{text}");
        assert!(text.ends_with("\r\n"));
        assert_eq!(text.matches("\r\n").count(), 3, "{text}");
        let mut rd = csv::Reader::from_reader(out.as_slice());
        let back: Vec<ExportRow> = rd.deserialize().collect::<Result<_, _>>().unwrap();
        assert_eq!(back, vec![row("a"), row("b\nc")]);
    }

    #[test]
    fn json_chunks_make_one_array() {
        let mut enc = Encoder::new(Format::Json).unwrap();
        enc.row(&row("a")).unwrap();
        enc.row(&row("b")).unwrap();
        let mut out = enc.take().unwrap();
        enc.row(&row("c")).unwrap();
        out.extend(enc.take().unwrap());
        out.extend(enc.finish().unwrap());
        let back: Vec<ExportRow> = serde_json::from_slice(&out).unwrap();
        assert_eq!(back.len(), 3);
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
