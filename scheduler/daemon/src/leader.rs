//! Leader election on a `coordination.k8s.io/v1` Lease, with the safety kube-scheduler's has: a leader
//! that cannot renew within its renew deadline stops leading before any standby may take the Lease over.
//!
//! - The leader renews every `renew_every`. It leads until `renew_deadline` after it *sent* its last
//!   successful write, so a write that is slow to be answered only shortens its term.
//! - A standby reads the Lease every [`STANDBY_POLL`] (every [`UNREACHABLE_POLL`] while it cannot reach
//!   it) and takes it over when it is free (released at shutdown) or when its version has not changed for
//!   the holder's `leaseDurationSeconds` since the standby first saw that version: expiry is judged on the
//!   standby's own clock, never by comparing `renewTime` with it, so clock skew between machines does not
//!   matter.
//! - Every write carries the `resourceVersion` it was decided on (a merge patch with that version is
//!   refused with 409 if the Lease changed meanwhile), so of two contenders one wins.
//!
//! As `renew_deadline = leaseDurationSeconds - renewGraceSeconds`, a standby takes an unrenewed Lease at
//! least `renewGraceSeconds` after the old leader stopped binding: the margin for a bind still on its way.
//! [`Elector`] is the pure decision logic; [`start`] runs it against the API server.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::error::ErrorKind;
use crate::throttle::{LogThrottle, cause_of};

/// How often a standby reads the Lease: a released Lease is taken over within this.
pub const STANDBY_POLL: Duration = Duration::from_millis(250);
/// How often a standby tries while the Lease cannot be reached (the API server is down, say): each failed
/// request is a log line of the client's own.
pub const UNREACHABLE_POLL: Duration = Duration::from_secs(1);

/// How often a failing Lease request is logged (one line per cause, with the count).
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The periods derived from `leaseDurationSeconds` and `renewGraceSeconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `leaseDurationSeconds`: written into the Lease; what a standby waits for an unchanged Lease.
    pub lease: Duration,
    /// How long after its last successful write a leader still leads.
    pub renew_deadline: Duration,
    /// How often the leader renews: about four tries within the renew deadline.
    pub renew_every: Duration,
    /// The most one Lease request may take before it counts as failed.
    pub request_timeout: Duration,
}

impl Timing {
    /// `grace_seconds` must be in `1..lease_seconds` (as the config validation requires).
    pub fn new(lease_seconds: u64, grace_seconds: u64) -> Timing {
        let lease = Duration::from_secs(lease_seconds);
        let renew_deadline = Duration::from_secs(lease_seconds.saturating_sub(grace_seconds).max(1));
        let renew_every = (renew_deadline / 4).clamp(Duration::from_millis(200), Duration::from_secs(2));
        let request_timeout = renew_every.max(Duration::from_secs(1));
        Timing { lease, renew_deadline, renew_every, request_timeout }
    }
}

/// The leader's right to bind, checked by the binder right before each bind goes out. Granted until the
/// renew deadline, so it lapses on time even when nobody tells the binder.
#[derive(Debug, Clone)]
pub struct Fence(Arc<Mutex<Term>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    None,
    Until(Instant),
    /// Leader election is off.
    Always,
    /// Shutting down: nothing grants it again.
    Closed,
}

impl Fence {
    /// Not leading (until [`grant_until`](Self::grant_until)).
    pub fn new() -> Fence {
        Fence(Arc::new(Mutex::new(Term::None)))
    }

    /// For a scheduler without leader election.
    pub fn always() -> Fence {
        Fence(Arc::new(Mutex::new(Term::Always)))
    }

    fn term(&self) -> std::sync::MutexGuard<'_, Term> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn holds(&self) -> bool {
        self.holds_at(Instant::now())
    }

    pub fn holds_at(&self, now: Instant) -> bool {
        match *self.term() {
            Term::Always => true,
            Term::Until(until) => now < until,
            Term::None | Term::Closed => false,
        }
    }

    pub fn grant_until(&self, until: Instant) {
        let mut term = self.term();
        if matches!(*term, Term::None | Term::Until(_)) {
            *term = Term::Until(until);
        }
    }

    /// Not leading any more (the Lease is held by another).
    pub fn withdraw(&self) {
        let mut term = self.term();
        if matches!(*term, Term::Until(_)) {
            *term = Term::None;
        }
    }

    /// For good: a shutdown.
    pub fn close(&self) {
        *self.term() = Term::Closed;
    }
}

impl Default for Fence {
    fn default() -> Self {
        Fence::new()
    }
}

/// What leader election reads from a Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// `None` when free (never set, or released).
    pub holder: Option<String>,
    /// The holder's `leaseDurationSeconds` (ours when the Lease has none).
    pub duration: Duration,
    pub transitions: i32,
    pub resource_version: String,
}

impl LeaseRecord {
    pub fn of(lease: &Lease, default_duration: Duration) -> LeaseRecord {
        let spec = lease.spec.clone().unwrap_or_default();
        LeaseRecord {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            duration: spec
                .lease_duration_seconds
                .filter(|s| *s > 0)
                .map_or(default_duration, |s| Duration::from_secs(s as u64)),
            transitions: spec.lease_transitions.unwrap_or(0),
            resource_version: lease.resource_version().unwrap_or_default(),
        }
    }
}

/// What a round of the election does after it knows the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// There is no Lease: create it, holding it.
    Create,
    /// Write ourselves as holder over this version: a renewal if we hold it, else a takeover.
    Write(LeaseRecord),
    /// Another holds a live Lease, or the Lease could not be read.
    Wait,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    Nothing,
    Absent,
    /// The Lease as last read or written, and when this version was first seen.
    Record(LeaseRecord, Instant),
}

/// The decisions of leader election, on the Lease versions it is shown and the instants it is given.
#[derive(Debug, Clone)]
pub struct Elector {
    identity: String,
    timing: Timing,
    known: Known,
    /// Leading until then: `renew_deadline` after the last successful write was sent.
    term_until: Option<Instant>,
    /// Why the term ended early (the Lease was seen held by another, or gone).
    ended_by: Option<String>,
}

impl Elector {
    pub fn new(identity: impl Into<String>, timing: Timing) -> Elector {
        Elector { identity: identity.into(), timing, known: Known::Nothing, term_until: None, ended_by: None }
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    pub fn leading(&self, now: Instant) -> bool {
        self.term_until.is_some_and(|until| now < until)
    }

    /// When the current term ends, while leading.
    pub fn term_until(&self) -> Option<Instant> {
        self.term_until
    }

    /// Why leadership ended, once it has: for the one log line that says so.
    pub fn end_reason(&self) -> String {
        self.ended_by.clone().unwrap_or_else(|| {
            format!("the Lease was not renewed within the renew deadline ({:?})", self.timing.renew_deadline)
        })
    }

    /// A holder renews from the version it wrote, without reading first; everyone else reads.
    pub fn needs_read(&self) -> bool {
        !matches!(&self.known, Known::Record(r, _) if r.holder.as_deref() == Some(self.identity.as_str()))
    }

    /// A successful read: `None` when there is no Lease.
    pub fn observe(&mut self, lease: Option<LeaseRecord>, now: Instant) {
        match lease {
            None => {
                self.end_term("the Lease was deleted".into());
                self.known = Known::Absent;
            }
            Some(record) => {
                if let Some(holder) = record.holder.as_deref().filter(|h| *h != self.identity) {
                    self.end_term(format!("the Lease is held by {holder}"));
                }
                let seen = match &self.known {
                    Known::Record(r, seen) if r.resource_version == record.resource_version => *seen,
                    _ => now,
                };
                self.known = Known::Record(record, seen);
            }
        }
    }

    fn end_term(&mut self, why: String) {
        if self.term_until.take().is_some() {
            self.ended_by = Some(why);
        }
    }

    /// What to do now, on what is known of the Lease.
    pub fn step(&self, now: Instant) -> Step {
        match &self.known {
            Known::Nothing => Step::Wait,
            Known::Absent => Step::Create,
            Known::Record(record, seen) => match record.holder.as_deref() {
                Some(holder) if holder == self.identity => Step::Write(record.clone()),
                None => Step::Write(record.clone()),
                Some(_) if now >= *seen + record.duration => Step::Write(record.clone()),
                Some(_) => Step::Wait,
            },
        }
    }

    /// The merge patch for [`Step::Write`] over `base`: conditional on its `resourceVersion`.
    pub fn write_patch(&self, base: &LeaseRecord, now: Timestamp) -> Value {
        let mut spec = json!({
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.timing.lease.as_secs(),
            "renewTime": MicroTime(now),
        });
        if base.holder.as_deref() != Some(self.identity.as_str()) {
            spec["acquireTime"] = json!(MicroTime(now));
            spec["leaseTransitions"] = json!(base.transitions + 1);
        }
        json!({"metadata": {"resourceVersion": base.resource_version}, "spec": spec})
    }

    /// The Lease for [`Step::Create`].
    pub fn new_lease(&self, name: &str, namespace: &str, now: Timestamp) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.timing.lease.as_secs() as i32),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Our write (or create) sent at `sent_at` succeeded and left `record`.
    pub fn written(&mut self, record: LeaseRecord, sent_at: Instant) {
        self.known = Known::Record(record, sent_at);
        self.term_until = Some(sent_at + self.timing.renew_deadline);
        self.ended_by = None;
    }

    /// Our write was refused because the Lease changed (409): read it again before deciding.
    pub fn conflicted(&mut self) {
        self.known = Known::Nothing;
    }

    /// The merge patch that gives the Lease back at shutdown, if we are its holder as far as we know.
    pub fn release_patch(&self) -> Option<Value> {
        match &self.known {
            Known::Record(r, _) if r.holder.as_deref() == Some(self.identity.as_str()) => Some(json!({
                "metadata": {"resourceVersion": r.resource_version},
                "spec": {"holderIdentity": null, "acquireTime": null, "renewTime": null},
            })),
            _ => None,
        }
    }

    /// Shutting down: whatever happens to the release, this instance leads no more.
    pub fn resign(&mut self) {
        self.term_until = None;
        self.ended_by = Some("shutting down".into());
    }
}

/// What the decision loop is told about leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseStatus {
    pub leading: bool,
    /// The last Lease request was answered. A standby that cannot reach the Lease cannot take over.
    pub reachable: bool,
}

/// The running election: its status, and the release at shutdown.
pub struct Election {
    pub status: watch::Receiver<LeaseStatus>,
    stop: Option<oneshot::Sender<bool>>,
    task: JoinHandle<()>,
}

impl Election {
    /// Ends the election. With `give_back`, a Lease we hold is released so a standby takes over at once;
    /// without, it is left to expire. Waits at most `within`.
    pub async fn end(mut self, give_back: bool, within: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(give_back);
        }
        if tokio::time::timeout(within, &mut self.task).await.is_err() {
            warn!("giving the Lease back took too long; it is left to expire");
            self.task.abort();
        }
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the election on Lease `namespace/name`; `fence` is granted while this instance leads.
pub fn start(client: Client, namespace: &str, name: &str, elector: Elector, fence: Fence) -> Election {
    let (status_tx, status) = watch::channel(LeaseStatus { leading: false, reachable: true });
    let (stop, stopped) = oneshot::channel();
    let driver = Driver {
        api: Api::namespaced(client, namespace),
        name: name.into(),
        namespace: namespace.into(),
        elector,
        fence,
        status: status_tx,
        errors: LogThrottle::new(ERROR_LOG_INTERVAL),
        reachable: true,
    };
    let task = tokio::spawn(driver.run(stopped));
    Election { status, stop: Some(stop), task }
}

struct Driver {
    api: Api<Lease>,
    name: String,
    namespace: String,
    elector: Elector,
    fence: Fence,
    status: watch::Sender<LeaseStatus>,
    errors: LogThrottle,
    reachable: bool,
}

impl Driver {
    async fn run(mut self, mut stopped: oneshot::Receiver<bool>) {
        let mut next_round = tokio::time::Instant::now();
        let mut leading = false;
        let give_back = loop {
            // Wake at the end of the term too: a loss is told when it happens, not at the next round.
            let wake = match self.elector.term_until() {
                Some(until) if leading => next_round.min(until.into()),
                _ => next_round,
            };
            tokio::select! {
                give_back = &mut stopped => break give_back.unwrap_or(false),
                _ = tokio::time::sleep_until(wake) => {}
            }
            if tokio::time::Instant::now() >= next_round {
                let period = if self.elector.leading(Instant::now()) {
                    self.elector.timing().renew_every
                } else if self.reachable {
                    STANDBY_POLL
                } else {
                    UNREACHABLE_POLL
                };
                next_round = tokio::time::Instant::now() + period;
                // Not cut short by a stop: a renewal abandoned half way could change the Lease's version
                // behind the release that follows.
                self.round().await;
            }
            leading = self.publish(leading);
        };
        self.elector.resign();
        self.fence.withdraw();
        if leading {
            info!("stopped leading: shutting down");
        }
        if give_back {
            self.release().await;
        }
    }

    /// Tells the fence and the decision loop; logs a change of leadership. Returns whether leading.
    fn publish(&mut self, was_leading: bool) -> bool {
        let now = Instant::now();
        let leading = self.elector.leading(now);
        match self.elector.term_until() {
            Some(until) if leading => self.fence.grant_until(until),
            _ => self.fence.withdraw(),
        }
        if leading && !was_leading {
            info!(lease = %self.name, "started leading");
        } else if !leading && was_leading {
            warn!(lease = %self.name, reason = %self.elector.end_reason(), "stopped leading");
        }
        self.status.send_if_modified(|s| {
            let new = LeaseStatus { leading, reachable: self.reachable };
            let changed = *s != new;
            *s = new;
            changed
        });
        leading
    }

    /// One request, or two (a read, then a write), each within the request timeout and, while leading,
    /// never past the end of the term.
    async fn round(&mut self) {
        if self.elector.needs_read() {
            match self.timed(self.api.get_opt(&self.name)).await {
                Ok(lease) => {
                    let record = lease.map(|l| LeaseRecord::of(&l, self.elector.timing().lease));
                    self.elector.observe(record, Instant::now());
                    self.reachable = true;
                }
                Err(e) => return self.failed("reading", e),
            }
        }
        let sent_at = Instant::now();
        let result = match self.elector.step(sent_at) {
            Step::Wait => return,
            Step::Create => {
                let lease = self.elector.new_lease(&self.name, &self.namespace, Timestamp::now());
                self.timed(self.api.create(&PostParams::default(), &lease)).await
            }
            Step::Write(base) => {
                let patch = self.elector.write_patch(&base, Timestamp::now());
                self.timed(self.api.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))).await
            }
        };
        match result {
            Ok(lease) => {
                self.elector.written(LeaseRecord::of(&lease, self.elector.timing().lease), sent_at);
                self.reachable = true;
            }
            // Someone else wrote first (or created it), or it was deleted: read again.
            Err(RoundError::Api(e))
                if matches!(ErrorKind::of_status(e.code), ErrorKind::Conflict | ErrorKind::NotFound) =>
            {
                self.elector.conflicted();
                self.reachable = true;
            }
            Err(e) => self.failed("writing", e),
        }
    }

    async fn timed<T>(&self, request: impl Future<Output = Result<T, kube::Error>>) -> Result<T, RoundError> {
        let mut limit = self.elector.timing().request_timeout;
        let now = Instant::now();
        if let Some(until) = self.elector.term_until().filter(|until| *until > now) {
            limit = limit.min((until - now).max(Duration::from_millis(10)));
        }
        match tokio::time::timeout(limit, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(kube::Error::Api(s))) => Err(RoundError::Api(s)),
            Ok(Err(e)) => Err(RoundError::Client(e)),
            Err(_) => Err(RoundError::Timeout(limit)),
        }
    }

    fn failed(&mut self, doing: &str, e: RoundError) {
        self.reachable = false;
        if let Some(count) = self.errors.note(&format!("{doing} {}", e.cause()), Instant::now()) {
            warn!(lease = %self.name, error = %e, count, "{doing} the Lease failed");
        }
    }

    /// Gives the Lease back if it is ours. A conflict means it changed since we last wrote it (a renewal
    /// answered too late, say): it is read again and given back if still ours.
    async fn release(&mut self) {
        for _ in 0..3 {
            let Some(patch) = self.elector.release_patch() else { return };
            let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
            let error = match self.timed(self.api.patch(&self.name, &params, &patch)).await {
                Ok(_) => {
                    info!(lease = %self.name, "lease released");
                    return;
                }
                Err(RoundError::Api(e)) if ErrorKind::of_status(e.code) == ErrorKind::Conflict => {
                    match self.timed(self.api.get_opt(&self.name)).await {
                        Ok(lease) => {
                            let record = lease.map(|l| LeaseRecord::of(&l, self.elector.timing().lease));
                            self.elector.observe(record, Instant::now());
                            continue;
                        }
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            warn!(lease = %self.name, error = %error, "releasing the Lease failed; it is left to expire");
            return;
        }
    }
}

/// A Lease request that failed: answered with a failure, not answered by the client, or not in time.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("ApiError: {0} (code: {code})", code = .0.code)]
    Api(Box<kube::core::Status>),
    #[error(transparent)]
    Client(kube::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl RoundError {
    /// What repeated failures are counted under in the log throttle.
    fn cause(&self) -> std::borrow::Cow<'static, str> {
        match self {
            RoundError::Api(s) => format!("HTTP {}", s.code).into(),
            RoundError::Client(e) => cause_of(e),
            RoundError::Timeout(_) => "timeout".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "me";

    fn timing() -> Timing {
        Timing::new(4, 2)
    }

    fn record(holder: Option<&str>, version: &str) -> LeaseRecord {
        LeaseRecord {
            holder: holder.map(str::to_string),
            duration: Duration::from_secs(4),
            transitions: 3,
            resource_version: version.into(),
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn timing_follows_kube_scheduler_for_the_defaults_and_stays_inside_short_leases() {
        // 15 s lease, 5 s grace: kube-scheduler's 15 s lease, 10 s renew deadline, 2 s retry period.
        let t = Timing::new(15, 5);
        assert_eq!((t.lease, t.renew_deadline, t.renew_every), (secs(15.0), secs(10.0), secs(2.0)));
        let t = Timing::new(4, 2);
        assert_eq!((t.renew_deadline, t.renew_every), (secs(2.0), secs(0.5)));
        assert!(t.request_timeout < t.renew_deadline);
    }

    #[test]
    fn a_free_or_missing_lease_is_taken_at_once() {
        let t0 = Instant::now();
        let mut e = Elector::new(ME, timing());
        assert_eq!(e.step(t0), Step::Wait, "nothing read yet");
        e.observe(None, t0);
        assert_eq!(e.step(t0), Step::Create);
        e.observe(Some(record(None, "7")), t0);
        assert_eq!(e.step(t0), Step::Write(record(None, "7")));
    }

    #[test]
    fn a_lease_held_by_another_is_taken_only_after_it_stayed_unchanged_for_its_duration() {
        let t0 = Instant::now();
        let mut e = Elector::new(ME, timing());
        e.observe(Some(record(Some("other"), "1")), t0);
        assert_eq!(e.step(t0 + secs(3.9)), Step::Wait);
        // Renewed: the wait starts again from when the new version was seen.
        e.observe(Some(record(Some("other"), "2")), t0 + secs(3.0));
        assert_eq!(e.step(t0 + secs(6.9)), Step::Wait);
        e.observe(Some(record(Some("other"), "2")), t0 + secs(6.0));
        assert_eq!(e.step(t0 + secs(7.0)), Step::Write(record(Some("other"), "2")));
    }

    #[test]
    fn the_holder_leads_until_the_renew_deadline_after_its_last_write_was_sent() {
        let t0 = Instant::now();
        let mut e = Elector::new(ME, timing());
        e.observe(Some(record(None, "1")), t0);
        assert!(!e.leading(t0));
        e.written(record(Some(ME), "2"), t0);
        assert!(e.leading(t0 + secs(1.9)));
        assert!(!e.leading(t0 + secs(2.0)), "the renew deadline is lease - grace = 2 s");
        assert!(e.end_reason().contains("renew deadline"));
        // The holder renews from its own version without reading, even after its term ran out.
        assert!(!e.needs_read());
        assert_eq!(e.step(t0 + secs(2.5)), Step::Write(record(Some(ME), "2")));
        e.written(record(Some(ME), "3"), t0 + secs(2.5));
        assert!(e.leading(t0 + secs(4.4)));
    }

    #[test]
    fn the_term_ends_before_a_standby_may_take_over_by_at_least_the_grace() {
        // The standby sees each version no earlier than it was sent; it waits the full lease duration.
        let sent = Instant::now();
        let mut leader = Elector::new(ME, timing());
        leader.written(record(Some(ME), "5"), sent);
        let mut standby = Elector::new("standby", timing());
        standby.observe(Some(record(Some(ME), "5")), sent);
        let first_takeover =
            (0..1000).map(|ms| sent + Duration::from_millis(ms * 10)).find(|t| standby.step(*t) != Step::Wait).unwrap();
        let last_leading =
            (0..1000).map(|ms| sent + Duration::from_millis(ms * 10)).rfind(|t| leader.leading(*t)).unwrap();
        assert!(first_takeover - last_leading >= secs(2.0), "{:?}", first_takeover - last_leading);
    }

    #[test]
    fn seeing_another_holder_ends_the_term_at_once_and_says_why() {
        let t0 = Instant::now();
        let mut e = Elector::new(ME, timing());
        e.written(record(Some(ME), "2"), t0);
        e.observe(Some(record(Some("b"), "3")), t0 + secs(0.5));
        assert!(!e.leading(t0 + secs(0.5)));
        assert_eq!(e.end_reason(), "the Lease is held by b");
        assert!(e.needs_read());
        assert_eq!(e.release_patch(), None, "not ours to release");
    }

    #[test]
    fn a_conflict_makes_the_next_round_read_first() {
        let t0 = Instant::now();
        let mut e = Elector::new(ME, timing());
        e.written(record(Some(ME), "2"), t0);
        e.conflicted();
        assert!(e.needs_read());
        assert_eq!(e.step(t0), Step::Wait);
    }

    #[test]
    fn writes_are_conditional_on_the_version_they_were_decided_on() {
        let e = Elector::new(ME, timing());
        let now: Timestamp = "2026-01-02T03:04:05.123456Z".parse().unwrap();
        let take = e.write_patch(&record(Some("other"), "41"), now);
        assert_eq!(take["metadata"]["resourceVersion"], "41");
        assert_eq!(take["spec"]["holderIdentity"], ME);
        assert_eq!(take["spec"]["leaseDurationSeconds"], 4);
        assert_eq!(take["spec"]["leaseTransitions"], 4);
        assert_eq!(take["spec"]["acquireTime"], "2026-01-02T03:04:05.123456Z");
        assert_eq!(take["spec"]["renewTime"], "2026-01-02T03:04:05.123456Z");
        // A renewal keeps the acquisition time and the transition count.
        let renew = e.write_patch(&record(Some(ME), "42"), now);
        assert_eq!(renew["metadata"]["resourceVersion"], "42");
        assert!(renew["spec"].get("acquireTime").is_none() && renew["spec"].get("leaseTransitions").is_none());
    }

    #[test]
    fn only_the_holder_releases_and_only_the_version_it_knows() {
        let t0 = Instant::now();
        let mut e = Elector::new(ME, timing());
        assert_eq!(e.release_patch(), None);
        e.written(record(Some(ME), "9"), t0);
        let patch = e.release_patch().unwrap();
        assert_eq!(patch["metadata"]["resourceVersion"], "9");
        assert!(patch["spec"]["holderIdentity"].is_null());
        e.resign();
        assert!(!e.leading(t0));
        assert_eq!(e.end_reason(), "shutting down");
    }

    #[test]
    fn a_lease_record_reads_free_holders_and_missing_durations() {
        let lease: Lease = serde_json::from_value(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "mlsched", "resourceVersion": "12"},
            "spec": {"holderIdentity": "", "leaseTransitions": 2},
        }))
        .unwrap();
        let r = LeaseRecord::of(&lease, secs(15.0));
        assert_eq!(
            r,
            LeaseRecord { holder: None, duration: secs(15.0), transitions: 2, resource_version: "12".into() }
        );
    }

    #[test]
    fn the_fence_holds_until_its_term_and_never_after_closing() {
        let t0 = Instant::now();
        let fence = Fence::new();
        assert!(!fence.holds_at(t0));
        fence.grant_until(t0 + secs(2.0));
        assert!(fence.holds_at(t0 + secs(1.9)));
        assert!(!fence.holds_at(t0 + secs(2.0)));
        fence.withdraw();
        assert!(!fence.holds_at(t0));
        fence.grant_until(t0 + secs(2.0));
        fence.close();
        fence.grant_until(t0 + secs(2.0));
        assert!(!fence.holds_at(t0));
        let always = Fence::always();
        assert!(always.holds());
        always.withdraw();
        assert!(always.holds(), "without leader election there is nothing to withdraw");
        always.close();
        assert!(!always.holds());
    }
}
