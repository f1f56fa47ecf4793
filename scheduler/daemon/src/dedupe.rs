//! De-duplication of what is reported: an Event is created when its message changes and otherwise only
//! has its count bumped; a condition is patched only when it changes. Pure.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventAction {
    /// Create a new Event object with this name (count 1).
    Create { name: String },
    /// Patch the existing Event: count and lastTimestamp.
    Bump { name: String, count: i32 },
}

#[derive(Debug, Default)]
pub struct EventLog {
    /// (object key, reason) → (message, event name, count).
    last: HashMap<(String, String), (String, String, i32)>,
    next: u64,
    /// Makes names unique across restarts of the scheduler.
    salt: u64,
}

impl EventLog {
    pub fn new(salt: u64) -> Self {
        EventLog { salt, ..EventLog::default() }
    }

    /// What to do to report `reason`/`message` about object `object_name` (its key is `object_key`).
    pub fn record(&mut self, object_key: &str, object_name: &str, reason: &str, message: &str) -> EventAction {
        let key = (object_key.to_string(), reason.to_string());
        if let Some((last_message, name, count)) = self.last.get_mut(&key)
            && last_message == message
        {
            *count += 1;
            return EventAction::Bump { name: name.clone(), count: *count };
        }
        self.next += 1;
        let name = format!("{object_name}.{:x}{:04x}", self.salt, self.next);
        self.last.insert(key, (message.to_string(), name.clone(), 1));
        EventAction::Create { name }
    }

    /// A write of what `record` answered for `object_key`/`reason` failed: forget it, so the next report
    /// creates the Event again instead of bumping one that does not exist.
    pub fn unrecord(&mut self, object_key: &str, reason: &str) {
        self.last.remove(&(object_key.to_string(), reason.to_string()));
    }

    /// The object is gone: its entries go too.
    pub fn forget(&mut self, object_key: &str) {
        self.last.retain(|(k, _), _| k != object_key);
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

/// Remembers the last value written per key, so an unchanged condition is not patched again.
#[derive(Debug, Default)]
pub struct ChangeLog {
    last: HashMap<String, String>,
}

impl ChangeLog {
    /// Whether `value` differs from what was last written for `key` (and records it).
    pub fn changed(&mut self, key: &str, value: &str) -> bool {
        match self.last.get(key) {
            Some(v) if v == value => false,
            _ => {
                self.last.insert(key.to_string(), value.to_string());
                true
            }
        }
    }

    pub fn forget(&mut self, key: &str) {
        self.last.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_message_bumps_new_message_creates() {
        let mut log = EventLog::new(0xab);
        let a = log.record("ns/p", "p", "FailedScheduling", "0/3 nodes are available: 3 Insufficient cpu.");
        let EventAction::Create { name } = a.clone() else { panic!("{a:?}") };
        assert!(name.starts_with("p."));
        assert_eq!(
            log.record("ns/p", "p", "FailedScheduling", "0/3 nodes are available: 3 Insufficient cpu."),
            EventAction::Bump { name: name.clone(), count: 2 }
        );
        assert_eq!(
            log.record("ns/p", "p", "FailedScheduling", "0/3 nodes are available: 3 Insufficient cpu."),
            EventAction::Bump { name: name.clone(), count: 3 }
        );
        let b = log.record("ns/p", "p", "FailedScheduling", "0/4 nodes are available: 4 Insufficient cpu.");
        assert!(matches!(b, EventAction::Create { name: ref n } if *n != name));
        assert!(matches!(log.record("ns/p", "p", "Scheduled", "x"), EventAction::Create { .. }));
        assert!(matches!(
            log.record("ns/q", "q", "FailedScheduling", "0/4 nodes are available: 4 Insufficient cpu."),
            EventAction::Create { .. }
        ));
        log.forget("ns/p");
        assert_eq!(log.len(), 1);
        // A failed write is forgotten: the same message creates a new Event rather than bumping.
        log.unrecord("ns/q", "FailedScheduling");
        assert!(matches!(
            log.record("ns/q", "q", "FailedScheduling", "0/4 nodes are available: 4 Insufficient cpu."),
            EventAction::Create { .. }
        ));
    }

    #[test]
    fn change_log() {
        let mut c = ChangeLog::default();
        assert!(c.changed("ns/p", "a"));
        assert!(!c.changed("ns/p", "a"));
        assert!(c.changed("ns/p", "b"));
        c.forget("ns/p");
        assert!(c.changed("ns/p", "b"));
    }
}
