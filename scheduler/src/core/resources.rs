//! Scalar resources with checked arithmetic.
//!
//! Quantities are integers in the unit Kubernetes itself accounts in: CPU in millicores, memory in bytes,
//! pods as a count, and every other (extended) resource as an integer count. Overflow and underflow are
//! errors, never wrap-arounds: a snapshot whose accounting went negative would schedule on capacity that
//! does not exist.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

pub const MIB: i64 = 1024 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ResourceError {
    #[error("resource arithmetic overflowed on {0}")]
    Overflow(String),
    #[error("{resource} would go negative ({have} - {take})")]
    Negative { resource: String, have: i64, take: i64 },
    #[error("{resource} quantity {value} is negative")]
    NegativeQuantity { resource: String, value: i64 },
}

/// A vector of resource quantities: CPU, memory, pod slots and named extended resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    pub cpu_milli: i64,
    pub memory_bytes: i64,
    pub pods: i64,
    /// Extended resources by name (`nvidia.com/mig-1g.10gb`, `example.com/fpga`, ...). Zero entries are
    /// never stored, so two equal vectors compare equal.
    pub extended: BTreeMap<String, i64>,
}

impl Resources {
    pub fn new(cpu_milli: i64, memory_bytes: i64, pods: i64) -> Self {
        Resources { cpu_milli, memory_bytes, pods, extended: BTreeMap::new() }
    }

    pub fn with_extended(mut self, name: impl Into<String>, value: i64) -> Self {
        self.set_extended(name, value);
        self
    }

    pub fn set_extended(&mut self, name: impl Into<String>, value: i64) {
        let name = name.into();
        if value == 0 {
            self.extended.remove(&name);
        } else {
            self.extended.insert(name, value);
        }
    }

    pub fn extended(&self, name: &str) -> i64 {
        self.extended.get(name).copied().unwrap_or(0)
    }

    /// Whether any amount is larger than in `before` (an extended resource `before` lacks counts as 0).
    pub fn grew_from(&self, before: &Resources) -> bool {
        self.cpu_milli > before.cpu_milli
            || self.memory_bytes > before.memory_bytes
            || self.pods > before.pods
            || self.extended.iter().any(|(name, &value)| value > before.extended(name))
    }

    /// Every quantity must be non-negative for a request or a capacity to make sense.
    pub fn validate(&self) -> Result<(), ResourceError> {
        for (name, value) in self.entries() {
            if value < 0 {
                return Err(ResourceError::NegativeQuantity { resource: name.to_string(), value });
            }
        }
        Ok(())
    }

    /// All entries as (name, value), with the core resources under their Kubernetes names.
    pub fn entries(&self) -> impl Iterator<Item = (&str, i64)> {
        [("cpu", self.cpu_milli), ("memory", self.memory_bytes), ("pods", self.pods)]
            .into_iter()
            .chain(self.extended.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    pub fn checked_add(&self, other: &Resources) -> Result<Resources, ResourceError> {
        let add = |name: &str, a: i64, b: i64| a.checked_add(b).ok_or_else(|| ResourceError::Overflow(name.into()));
        let mut out = Resources::new(
            add("cpu", self.cpu_milli, other.cpu_milli)?,
            add("memory", self.memory_bytes, other.memory_bytes)?,
            add("pods", self.pods, other.pods)?,
        );
        out.extended = self.extended.clone();
        for (name, value) in &other.extended {
            let sum = add(name, self.extended(name), *value)?;
            out.set_extended(name.clone(), sum);
        }
        Ok(out)
    }

    /// `self - other`, refusing to go below zero on any resource.
    pub fn checked_sub(&self, other: &Resources) -> Result<Resources, ResourceError> {
        let sub = |name: &str, a: i64, b: i64| {
            let r = a.checked_sub(b).ok_or_else(|| ResourceError::Overflow(name.into()))?;
            if r < 0 {
                return Err(ResourceError::Negative { resource: name.into(), have: a, take: b });
            }
            Ok(r)
        };
        let mut out = Resources::new(
            sub("cpu", self.cpu_milli, other.cpu_milli)?,
            sub("memory", self.memory_bytes, other.memory_bytes)?,
            sub("pods", self.pods, other.pods)?,
        );
        out.extended = self.extended.clone();
        for (name, value) in &other.extended {
            let diff = sub(name, self.extended(name), *value)?;
            out.set_extended(name.clone(), diff);
        }
        Ok(out)
    }

    /// The names of the resources in `request` that do not fit in `self` (treated as free capacity).
    pub fn insufficient<'a>(&self, request: &'a Resources) -> Vec<&'a str> {
        let mut short = Vec::new();
        if request.cpu_milli > self.cpu_milli {
            short.push("cpu");
        }
        if request.memory_bytes > self.memory_bytes {
            short.push("memory");
        }
        if request.pods > self.pods {
            short.push("pods");
        }
        for (name, value) in &request.extended {
            if *value > self.extended(name) {
                short.push(name.as_str());
            }
        }
        short
    }

    pub fn fits_in(&self, free: &Resources) -> bool {
        free.insufficient(self).is_empty()
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu={}m memory={}Mi pods={}", self.cpu_milli, self.memory_bytes / MIB, self.pods)?;
        for (name, value) in &self.extended {
            write!(f, " {name}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_sub_round_trip_including_extended() {
        let a = Resources::new(4000, 8 * MIB, 10).with_extended("example.com/fpga", 2);
        let b = Resources::new(1500, 2 * MIB, 1).with_extended("nvidia.com/mig-1g.10gb", 1);
        let sum = a.checked_add(&b).unwrap();
        assert_eq!(sum.cpu_milli, 5500);
        assert_eq!(sum.extended("example.com/fpga"), 2);
        assert_eq!(sum.extended("nvidia.com/mig-1g.10gb"), 1);
        assert_eq!(sum.checked_sub(&b).unwrap(), a);
    }

    #[test]
    fn sub_to_zero_drops_the_extended_entry() {
        let a = Resources::new(0, 0, 0).with_extended("x/y", 3);
        let zero = a.checked_sub(&a).unwrap();
        assert_eq!(zero, Resources::default());
        assert!(zero.extended.is_empty());
    }

    #[test]
    fn sub_below_zero_is_an_error_naming_the_resource() {
        let free = Resources::new(1000, MIB, 1);
        let err = free.checked_sub(&Resources::new(1001, 0, 0)).unwrap_err();
        assert_eq!(err, ResourceError::Negative { resource: "cpu".into(), have: 1000, take: 1001 });
        let err = free.checked_sub(&Resources::default().with_extended("nvidia.com/mig-1g.10gb", 1)).unwrap_err();
        assert!(matches!(err, ResourceError::Negative { ref resource, .. } if resource == "nvidia.com/mig-1g.10gb"));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let big = Resources::new(i64::MAX, 0, 0);
        assert_eq!(big.checked_add(&Resources::new(1, 0, 0)), Err(ResourceError::Overflow("cpu".into())));
        let neg = Resources::new(i64::MIN, 0, 0);
        assert!(neg.checked_sub(&Resources::new(1, 0, 0)).is_err());
    }

    #[test]
    fn insufficient_lists_each_short_resource() {
        let free = Resources::new(2000, 4 * MIB, 5).with_extended("a/b", 1);
        let req = Resources::new(3000, 4 * MIB, 1).with_extended("a/b", 2).with_extended("c/d", 1);
        assert_eq!(free.insufficient(&req), vec!["cpu", "a/b", "c/d"]);
        assert!(!req.fits_in(&free));
        assert!(Resources::new(2000, 4 * MIB, 5).fits_in(&free));
    }

    #[test]
    fn validate_rejects_negative_quantities() {
        assert!(Resources::new(-1, 0, 0).validate().is_err());
        assert!(Resources::default().with_extended("a/b", -2).validate().is_err());
        assert!(Resources::new(1, 1, 1).validate().is_ok());
    }
}
