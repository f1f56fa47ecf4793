//! Typed errors of the API requests: what a failure means for the code that made the request, read from
//! the answer's status code (never from its message).
//!
//! - [`ErrorKind`]: a conflict (409), an object gone (404), worth retrying (429, 5xx, no answer), other.
//! - [`BindError`]: a `binding` POST that failed, or that was not sent.
//! - [`ReportError`]: a status patch or an Event write that failed.
//!
//! Each error's `Display` is the message written into logs and Kubernetes conditions; [`cause_of`] is what
//! repeated failures are counted under in the log throttle ([`crate::throttle`]).

use std::borrow::Cow;

/// What a failed API request means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 409: the object changed meanwhile, or exists already; on a `binding`, the pod is bound already.
    Conflict,
    /// 404: the object is gone.
    NotFound,
    /// 408, 429, 5xx, or no answer at all (a timeout, a refused or broken connection): the same request may
    /// well succeed later.
    Retryable,
    /// Anything else (403 Forbidden, 422 Invalid, an answer that does not parse, ...): the same request
    /// would fail again.
    Other,
}

impl ErrorKind {
    /// The kind of an API server's answer, from its HTTP status code.
    pub fn of_status(code: u16) -> ErrorKind {
        match code {
            409 => ErrorKind::Conflict,
            404 => ErrorKind::NotFound,
            408 | 429 | 500..=599 => ErrorKind::Retryable,
            _ => ErrorKind::Other,
        }
    }

    /// The kind of a client error: an answer of the API server by its status code (by its machine-readable
    /// `reason` when a `Status` body came without a code), no answer at all as retryable.
    pub fn of(error: &kube::Error) -> ErrorKind {
        match error {
            kube::Error::Api(status) if status.code != 0 => ErrorKind::of_status(status.code),
            kube::Error::Api(status) => match status.reason.as_str() {
                "Conflict" | "AlreadyExists" => ErrorKind::Conflict,
                "NotFound" => ErrorKind::NotFound,
                "TooManyRequests" | "ServerTimeout" | "Timeout" | "InternalError" | "ServiceUnavailable" => {
                    ErrorKind::Retryable
                }
                _ => ErrorKind::Other,
            },
            // The connection (refused, reset), the client's own timeout, or the answer cut short.
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => ErrorKind::Retryable,
            _ => ErrorKind::Other,
        }
    }
}

/// What repeated failures are counted under in the log throttle: `HTTP 409` for an answer of the API server,
/// else the kind of client error (`HyperError`, `ServiceError`, ...), never what names an object.
pub fn cause_of(error: &kube::Error) -> Cow<'static, str> {
    match error {
        kube::Error::Api(status) if status.code != 0 => format!("HTTP {}", status.code).into(),
        kube::Error::Api(_) => "API error".into(),
        kube::Error::HyperError(_) => "HyperError".into(),
        kube::Error::Service(_) => "ServiceError".into(),
        kube::Error::ReadEvents(_) => "ReadEvents".into(),
        kube::Error::SerdeError(_) => "SerdeError".into(),
        kube::Error::FromUtf8(_) => "FromUtf8".into(),
        kube::Error::HttpError(_) => "HttpError".into(),
        kube::Error::BuildRequest(_) => "BuildRequest".into(),
        kube::Error::Auth(_) => "Auth".into(),
        _ => "other".into(),
    }
}

/// A watch that failed, counted under the cause of the request that failed (`list: HTTP 403`, ...).
pub fn watch_cause(error: &kube::runtime::watcher::Error) -> Cow<'static, str> {
    use kube::runtime::watcher::Error as W;
    match error {
        W::InitialListFailed(e) => format!("list: {}", cause_of(e)).into(),
        W::WatchStartFailed(e) => format!("start: {}", cause_of(e)).into(),
        W::WatchFailed(e) => format!("stream: {}", cause_of(e)).into(),
        W::WatchError(status) => format!("HTTP {}", status.code).into(),
        W::NoResourceVersion => "no resourceVersion".into(),
    }
}

/// Why a pod's `binding` POST did not bind it.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Refused by the API server, or not answered.
    #[error(transparent)]
    Request(#[from] kube::Error),
    /// Held back by the binder: this instance did not lead any more when the bind's turn came.
    #[error("not sent: this instance does not lead")]
    NotSent,
}

impl BindError {
    /// On a `binding`, [`ErrorKind::Conflict`] means the pod is bound already (to the node asked for, by an
    /// earlier attempt whose answer was lost, or elsewhere) and [`ErrorKind::NotFound`] that it is gone.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BindError::Request(e) => ErrorKind::of(e),
            BindError::NotSent => ErrorKind::Other,
        }
    }

    pub fn cause(&self) -> Cow<'static, str> {
        match self {
            BindError::Request(e) => cause_of(e),
            BindError::NotSent => "not sent".into(),
        }
    }
}

/// A report write (status patch, Event) that failed, with what was being written. (The client's error is
/// boxed: it is large, and these travel in every report write's `Result`.)
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("patching {pod} status: {source}")]
    PodStatus { pod: String, source: Box<kube::Error> },
    #[error("creating Event: {0}")]
    CreateEvent(#[source] Box<kube::Error>),
    #[error("bumping Event {event}: {source}")]
    BumpEvent { event: String, source: Box<kube::Error> },
    #[error("creating the Scheduled Event of {pod}: {source}")]
    ScheduledEvent { pod: String, source: Box<kube::Error> },
    #[error("patching PodGroup {gang} status: {source}")]
    PodGroupStatus { gang: String, source: Box<kube::Error> },
}

impl ReportError {
    fn source_error(&self) -> &kube::Error {
        match self {
            ReportError::PodStatus { source, .. }
            | ReportError::CreateEvent(source)
            | ReportError::BumpEvent { source, .. }
            | ReportError::ScheduledEvent { source, .. }
            | ReportError::PodGroupStatus { source, .. } => source,
        }
    }

    /// [`ErrorKind::NotFound`]: the object written about is gone, and retrying is pointless. An Event that
    /// is gone (expired, deleted) is not: the retry creates a new one, so its 404 counts as retryable.
    pub fn kind(&self) -> ErrorKind {
        match (self, ErrorKind::of(self.source_error())) {
            (ReportError::BumpEvent { .. }, ErrorKind::NotFound) => ErrorKind::Retryable,
            (_, kind) => kind,
        }
    }
}

/// A `kube::Error` as the client returns an API server's answer with status `code`, for tests.
#[cfg(test)]
pub fn api_error(code: u16) -> kube::Error {
    kube::Error::Api(kube::core::Status::failure(&format!("injected {code}"), "Test").with_code(code).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_kinds() {
        assert_eq!(ErrorKind::of_status(409), ErrorKind::Conflict);
        assert_eq!(ErrorKind::of_status(404), ErrorKind::NotFound);
        for code in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(ErrorKind::of_status(code), ErrorKind::Retryable, "{code}");
        }
        for code in [400, 401, 403, 405, 410, 413, 415, 422, 0, 600] {
            assert_eq!(ErrorKind::of_status(code), ErrorKind::Other, "{code}");
        }
    }

    #[test]
    fn client_errors_are_classified_by_code_not_by_message() {
        assert_eq!(ErrorKind::of(&api_error(409)), ErrorKind::Conflict);
        assert_eq!(ErrorKind::of(&api_error(404)), ErrorKind::NotFound);
        assert_eq!(ErrorKind::of(&api_error(429)), ErrorKind::Retryable);
        assert_eq!(ErrorKind::of(&api_error(500)), ErrorKind::Retryable);
        assert_eq!(ErrorKind::of(&api_error(403)), ErrorKind::Other);
        assert_eq!(ErrorKind::of(&api_error(422)), ErrorKind::Other);
        // A message that reads like another kind changes nothing.
        let misleading = kube::core::Status::failure("Conflict: 409 already assigned", "InternalError").with_code(500);
        assert_eq!(ErrorKind::of(&kube::Error::Api(misleading.boxed())), ErrorKind::Retryable);
        // A Status without a code: its reason decides.
        let no_code = |reason: &str| kube::Error::Api(kube::core::Status::failure("x", reason).boxed());
        assert_eq!(ErrorKind::of(&no_code("Conflict")), ErrorKind::Conflict);
        assert_eq!(ErrorKind::of(&no_code("NotFound")), ErrorKind::NotFound);
        assert_eq!(ErrorKind::of(&no_code("TooManyRequests")), ErrorKind::Retryable);
        assert_eq!(ErrorKind::of(&no_code("Forbidden")), ErrorKind::Other);
        // No answer: the connection or the client's timeout.
        let timeout = kube::Error::Service("operation timed out".into());
        assert_eq!(ErrorKind::of(&timeout), ErrorKind::Retryable);
        let read = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(ErrorKind::of(&kube::Error::ReadEvents(read)), ErrorKind::Retryable);
        let parse = serde_json::from_str::<u8>("x").unwrap_err();
        assert_eq!(ErrorKind::of(&kube::Error::SerdeError(parse)), ErrorKind::Other);
    }

    #[test]
    fn bind_errors_keep_their_kind_and_message() {
        let conflict = BindError::from(api_error(409));
        assert_eq!(conflict.kind(), ErrorKind::Conflict);
        assert_eq!(conflict.to_string(), api_error(409).to_string(), "the client's message, unchanged");
        assert_eq!(BindError::from(api_error(404)).kind(), ErrorKind::NotFound);
        assert_eq!(BindError::from(api_error(503)).kind(), ErrorKind::Retryable);
        assert_eq!(BindError::from(api_error(403)).kind(), ErrorKind::Other);
        assert_eq!(BindError::NotSent.kind(), ErrorKind::Other);
        assert_eq!(BindError::NotSent.to_string(), "not sent: this instance does not lead");
    }

    #[test]
    fn a_gone_event_is_written_again_but_a_gone_object_is_not() {
        let bump = ReportError::BumpEvent { event: "p.1".into(), source: api_error(404).into() };
        assert_eq!(bump.kind(), ErrorKind::Retryable);
        assert!(bump.to_string().starts_with("bumping Event p.1: ApiError: "), "{bump}");
        let status = ReportError::PodStatus { pod: "ns/p".into(), source: api_error(404).into() };
        assert_eq!(status.kind(), ErrorKind::NotFound);
        let group = ReportError::PodGroupStatus { gang: "ns/g".into(), source: api_error(409).into() };
        assert_eq!(group.kind(), ErrorKind::Conflict);
        assert_eq!(ReportError::CreateEvent(api_error(500).into()).kind(), ErrorKind::Retryable);
    }

    #[test]
    fn causes_leave_out_what_names_the_object() {
        assert_eq!(cause_of(&api_error(409)), "HTTP 409");
        assert_eq!(cause_of(&kube::Error::Api(kube::core::Status::failure("x", "y").boxed())), "API error");
        assert_eq!(cause_of(&kube::Error::Service("error trying to connect: refused".into())), "ServiceError");
        assert_eq!(BindError::NotSent.cause(), "not sent");
        assert_eq!(BindError::from(api_error(500)).cause(), "HTTP 500");
        use kube::runtime::watcher::Error as W;
        assert_eq!(watch_cause(&W::InitialListFailed(api_error(403))), "list: HTTP 403");
        let gone = kube::core::Status::failure("too old", "Expired").with_code(410);
        assert_eq!(watch_cause(&W::WatchError(gone.boxed())), "HTTP 410");
    }
}
