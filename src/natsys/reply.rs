//! Replies as they come back: `$SYS.REQ.SERVER.PING.*` answers (`{"server":{…},"data":{…}}`)
//! and JetStream API answers (`{"type":…,"success":true}` or `{"error":{…}}`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// Who answered a ping: the `server` object of every system reply (events.go `ServerInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerIdentity {
    /// `server_name`: stable, the key to track a node by.
    pub name: String,
    /// `server_id`: random on every start.
    pub id: String,
    pub host: Option<String>,
    pub cluster: Option<String>,
    pub domain: Option<String>,
    #[serde(rename = "ver")]
    pub version: Option<String>,
    pub jetstream: Option<bool>,
    /// Event sequence of this server's system account.
    pub seq: Option<u64>,
    /// When the server made the reply (RFC 3339).
    pub time: Option<String>,
}

/// A JetStream / system API error: `{"code":503,"err_code":10008,"description":"…"}`.
/// System replies have no `err_code`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct ApiError {
    pub code: u16,
    pub err_code: Option<u32>,
    pub description: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.err_code {
            Some(e) => write!(f, "{} (code {}, err_code {e})", self.description, self.code),
            None => write!(f, "{} (code {})", self.description, self.code),
        }
    }
}

/// What was wrong with one server's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyProblem {
    /// The server answered with an error object.
    Api(ApiError),
    /// The payload is not the expected JSON; `text` is its start.
    Malformed { reason: String, text: String },
}

impl fmt::Display for ReplyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyProblem::Api(e) => write!(f, "{e}"),
            ReplyProblem::Malformed { reason, text } => {
                write!(f, "unreadable reply ({reason}): {text:?}")
            }
        }
    }
}

/// One server's answer to `$SYS.REQ.SERVER.PING.<KIND>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerReply {
    /// Empty `name` only when the reply was malformed.
    pub server: ServerIdentity,
    /// `data` (`statsz` for STATSZ); `Null` when absent.
    pub data: Value,
    pub error: Option<ReplyProblem>,
    /// From sending the request to receiving this reply.
    #[serde(rename = "after_ms", with = "millis")]
    pub after: Duration,
}

impl ServerReply {
    /// Parses one payload; never fails (a bad payload becomes `error: Malformed`).
    pub fn parse(payload: &[u8], after: Duration) -> ServerReply {
        let malformed = |reason: String| ServerReply {
            server: ServerIdentity::default(),
            data: Value::Null,
            error: Some(ReplyProblem::Malformed {
                reason,
                text: start_of(payload),
            }),
            after,
        };
        let mut v: Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(e) => return malformed(format!("not JSON: {e}")),
        };
        let Some(obj) = v.as_object_mut() else {
            return malformed("not a JSON object".into());
        };
        let server = match obj
            .remove("server")
            .map(serde_json::from_value::<ServerIdentity>)
        {
            Some(Ok(s)) => s,
            Some(Err(e)) => return malformed(format!("bad \"server\": {e}")),
            None => return malformed("no \"server\" object".into()),
        };
        let data = obj
            .remove("data")
            .or_else(|| obj.remove("statsz"))
            .unwrap_or(Value::Null);
        let error = obj.remove("error").map(|e| match api_error(&e) {
            Some(a) => ReplyProblem::Api(a),
            None => ReplyProblem::Api(ApiError {
                description: e.to_string(),
                ..ApiError::default()
            }),
        });
        ServerReply {
            server,
            data,
            error,
            after,
        }
    }
}

/// One reply to an API request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// The parsed payload; `Null` when empty, a JSON string when it is not JSON.
    pub body: Value,
    /// `error` of a JetStream API reply.
    pub error: Option<ApiError>,
    #[serde(rename = "after_ms", with = "millis")]
    pub after: Duration,
}

impl Reply {
    pub fn parse(payload: &[u8], after: Duration) -> Reply {
        let body = if payload.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(payload)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()))
        };
        let error = body.get("error").and_then(api_error);
        Reply { body, error, after }
    }

    /// `success: true` in the body (step-down, peer-remove replies).
    pub fn success(&self) -> bool {
        self.body.get("success").and_then(Value::as_bool) == Some(true)
    }
}

fn api_error(v: &Value) -> Option<ApiError> {
    match v {
        Value::Object(_) => serde_json::from_value(v.clone()).ok(),
        Value::String(s) => Some(ApiError {
            description: s.clone(),
            ..ApiError::default()
        }),
        _ => None,
    }
}

fn start_of(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    text.chars().take(120).collect()
}

mod millis {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}
