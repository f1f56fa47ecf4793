//! Node selection constraints a pod carries: node selector, required node affinity, taints and
//! tolerations. The subset is the one ML pods use in practice (`In`, `NotIn`, `Exists`, `DoesNotExist`).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SelectorOp {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl std::str::FromStr for SelectorOp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "In" => Ok(SelectorOp::In),
            "NotIn" => Ok(SelectorOp::NotIn),
            "Exists" => Ok(SelectorOp::Exists),
            "DoesNotExist" => Ok(SelectorOp::DoesNotExist),
            other => Err(format!("unsupported node selector operator {other:?} (In, NotIn, Exists, DoesNotExist)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    pub key: String,
    pub op: SelectorOp,
    pub values: Vec<String>,
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            SelectorOp::In => value.is_some_and(|v| self.values.contains(v)),
            SelectorOp::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            SelectorOp::Exists => value.is_some(),
            SelectorOp::DoesNotExist => value.is_none(),
        }
    }
}

/// Required node affinity: the node must match at least one term; a term is an AND of requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NodeAffinity {
    pub terms: Vec<Vec<Requirement>>,
}

impl NodeAffinity {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.is_empty() || self.terms.iter().any(|term| term.iter().all(|r| r.matches(labels)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Toleration {
    /// Empty key with `exists` tolerates every taint.
    pub key: String,
    pub exists: bool,
    pub value: String,
    /// `None` tolerates every effect.
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if self.key.is_empty() {
            return self.exists;
        }
        self.key == taint.key && (self.exists || self.value == taint.value)
    }
}

/// The first taint that blocks scheduling and no toleration covers. `PreferNoSchedule` never blocks.
pub fn untolerated_taint<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| t.effect != TaintEffect::PreferNoSchedule)
        .find(|t| !tolerations.iter().any(|tol| tol.tolerates(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn req(key: &str, op: SelectorOp, values: &[&str]) -> Requirement {
        Requirement { key: key.into(), op, values: values.iter().map(|v| v.to_string()).collect() }
    }

    #[test]
    fn operators() {
        let l = labels(&[("gpu", "a100"), ("zone", "a")]);
        assert!(req("gpu", SelectorOp::In, &["a100", "h100"]).matches(&l));
        assert!(!req("gpu", SelectorOp::In, &["h100"]).matches(&l));
        assert!(req("gpu", SelectorOp::NotIn, &["h100"]).matches(&l));
        assert!(req("missing", SelectorOp::NotIn, &["x"]).matches(&l));
        assert!(req("zone", SelectorOp::Exists, &[]).matches(&l));
        assert!(!req("zone", SelectorOp::DoesNotExist, &[]).matches(&l));
        assert!("Gt".parse::<SelectorOp>().is_err());
    }

    #[test]
    fn affinity_is_or_of_ands() {
        let l = labels(&[("gpu", "a100"), ("zone", "a")]);
        let aff = NodeAffinity {
            terms: vec![
                vec![req("gpu", SelectorOp::In, &["h100"])],
                vec![req("gpu", SelectorOp::In, &["a100"]), req("zone", SelectorOp::In, &["a"])],
            ],
        };
        assert!(aff.matches(&l));
        let aff = NodeAffinity {
            terms: vec![vec![req("gpu", SelectorOp::In, &["a100"]), req("zone", SelectorOp::In, &["b"])]],
        };
        assert!(!aff.matches(&l));
        assert!(NodeAffinity::default().matches(&l));
    }

    #[test]
    fn taints_and_tolerations() {
        let gpu_taint = Taint { key: "nvidia.com/gpu".into(), value: "true".into(), effect: TaintEffect::NoSchedule };
        let soft = Taint { key: "soft".into(), value: String::new(), effect: TaintEffect::PreferNoSchedule };
        let taints = vec![soft.clone(), gpu_taint.clone()];
        assert_eq!(untolerated_taint(&taints, &[]), Some(&gpu_taint));
        let tol = Toleration { key: "nvidia.com/gpu".into(), exists: true, value: String::new(), effect: None };
        assert_eq!(untolerated_taint(&taints, &[tol]), None);
        let wrong_value =
            Toleration { key: "nvidia.com/gpu".into(), exists: false, value: "false".into(), effect: None };
        assert!(untolerated_taint(&taints, &[wrong_value]).is_some());
        let wrong_effect = Toleration {
            key: "nvidia.com/gpu".into(),
            exists: true,
            value: String::new(),
            effect: Some(TaintEffect::NoExecute),
        };
        assert!(untolerated_taint(&taints, &[wrong_effect]).is_some());
        let all = Toleration { key: String::new(), exists: true, value: String::new(), effect: None };
        assert!(untolerated_taint(&taints, &[all]).is_none());
    }
}
