//! The scheduler's Placement gRPC API, with a timeout on every call. Errors keep their kind (a bad
//! address, a timeout, or the gRPC status the scheduler answered); the status condition reads their text.

use std::collections::BTreeMap;
use std::time::Duration;

use mlsched_proto::v1 as pb;
use mlsched_proto::v1::placement_client::PlacementClient;
use tonic::transport::{Channel, Endpoint};

use crate::decide::Res;

/// Why a Placement API call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("placement API address {uri:?}: {source}")]
    Address {
        uri: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{call} timed out after {after:?}")]
    TimedOut { call: &'static str, after: Duration },
    #[error("{call}: {}: {}", .status.code(), .status.message())]
    Status { call: &'static str, status: tonic::Status },
}

#[derive(Clone)]
pub struct Placement {
    client: PlacementClient<Channel>,
    timeout: Duration,
}

/// One planned new replica.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub node: String,
    pub mean_hops: f64,
    pub network_cost: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub placements: Vec<Planned>,
    pub unplaceable: u32,
    pub reason: String,
}

/// What `PlanReplicas` needs of the pod template.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemplateInfo {
    pub requests: Res,
    pub node_selector: BTreeMap<String, String>,
    pub tolerated_taint_keys: Vec<String>,
}

impl Placement {
    /// Connects lazily: a scheduler that is not up yet makes calls fail (and the autoscaler wait), not the start.
    pub fn new(uri: &str, timeout: Duration) -> Result<Self, PlacementError> {
        let endpoint = Endpoint::from_shared(uri.to_string())
            .map_err(|source| PlacementError::Address { uri: uri.to_string(), source })?
            .connect_timeout(timeout)
            .timeout(timeout);
        Ok(Placement { client: PlacementClient::new(endpoint.connect_lazy()), timeout })
    }

    fn refs(ns: &str, pods: &[String]) -> Vec<pb::PodRef> {
        pods.iter().map(|p| pb::PodRef { namespace: ns.to_string(), name: p.clone() }).collect()
    }

    /// Per pod: (node, free CPU/memory on it). Pods the scheduler does not know are left out.
    pub async fn node_headroom(
        &self,
        ns: &str,
        pods: &[String],
    ) -> Result<BTreeMap<String, (String, Res)>, PlacementError> {
        let mut c = self.client.clone();
        let req = pb::NodeHeadroomRequest { pods: Self::refs(ns, pods) };
        let resp = tokio::time::timeout(self.timeout, c.node_headroom(req))
            .await
            .map_err(|_| PlacementError::TimedOut { call: "NodeHeadroom", after: self.timeout })?
            .map_err(|status| PlacementError::Status { call: "NodeHeadroom", status })?
            .into_inner();
        Ok(resp
            .pods
            .into_iter()
            .filter_map(|h| {
                let pod = h.pod?;
                let free = h.free.unwrap_or_default();
                Some((pod.name, (h.node, Res::new(free.cpu_milli, free.memory_bytes))))
            })
            .collect())
    }

    pub async fn plan_replicas(
        &self,
        ns: &str,
        template: &TemplateInfo,
        replicas: u32,
        existing: &[String],
    ) -> Result<Plan, PlacementError> {
        let mut c = self.client.clone();
        let req = pb::PlanReplicasRequest {
            template: Some(pb::PodTemplate {
                namespace: ns.to_string(),
                requests: Some(pb::Resources {
                    cpu_milli: template.requests.cpu,
                    memory_bytes: template.requests.mem,
                    gpu_milli: 0,
                }),
                node_selector: template.node_selector.clone().into_iter().collect(),
                tolerated_taint_keys: template.tolerated_taint_keys.clone(),
            }),
            replicas,
            existing: Self::refs(ns, existing),
        };
        let resp = tokio::time::timeout(self.timeout, c.plan_replicas(req))
            .await
            .map_err(|_| PlacementError::TimedOut { call: "PlanReplicas", after: self.timeout })?
            .map_err(|status| PlacementError::Status { call: "PlanReplicas", status })?
            .into_inner();
        Ok(Plan {
            placements: resp
                .placements
                .into_iter()
                .map(|p| Planned { node: p.node, mean_hops: p.mean_hops, network_cost: p.network_cost })
                .collect(),
            unplaceable: resp.unplaceable,
            reason: resp.reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_address_is_an_address_error_naming_it() {
        let err = Placement::new("http://[::1", Duration::from_secs(1)).err().expect("not a URI");
        assert!(matches!(err, PlacementError::Address { .. }), "{err:?}");
        assert!(err.to_string().contains("http://[::1"), "{err}");
    }

    #[tokio::test]
    async fn a_scheduler_not_listening_is_an_unavailable_status_not_a_timeout() {
        // A port nothing listens on: the connection is refused at once, well inside the timeout.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let placement = Placement::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
        let err = placement.node_headroom("ns", &["p".into()]).await.expect_err("nothing listens");
        match &err {
            PlacementError::Status { call, status } => {
                assert_eq!(*call, "NodeHeadroom");
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
            }
            other => panic!("expected a gRPC status, got {other:?}"),
        }
        assert!(err.to_string().starts_with("NodeHeadroom: "), "{err}");
    }
}
