//! API errors, rendered as `meta/v1` `Status` objects like the real server does.

use serde_json::{Value, json};

/// An error answer of the API server: HTTP code, `reason` and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `(name, group, kind)` for `details`.
    pub details: Option<Box<(String, String, String)>>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The `reason` the real server uses for a status code.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

impl ApiError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self { code, reason: reason_for(code), message: message.into(), details: None }
    }

    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = reason;
        self
    }

    pub fn with_details(mut self, name: &str, group: &str, kind: &str) -> Self {
        self.details = Some(Box::new((name.to_string(), group.to_string(), kind.to_string())));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn not_found(qualified: &str, name: &str, group: &str, plural: &str) -> Self {
        Self::new(404, format!("{qualified} \"{name}\" not found")).with_details(name, group, plural)
    }

    pub fn already_exists(qualified: &str, name: &str, group: &str, plural: &str) -> Self {
        Self::new(409, format!("{qualified} \"{name}\" already exists"))
            .with_reason("AlreadyExists")
            .with_details(name, group, plural)
    }

    pub fn conflict(qualified: &str, name: &str, group: &str, plural: &str, why: &str) -> Self {
        Self::new(409, format!("Operation cannot be fulfilled on {qualified} \"{name}\": {why}"))
            .with_details(name, group, plural)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            let (name, group, kind) = &**d;
            s["details"] = json!({"name": name, "group": group, "kind": kind});
        }
        s
    }
}

/// A `Status` with `status: Success`.
pub fn success_status(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}
