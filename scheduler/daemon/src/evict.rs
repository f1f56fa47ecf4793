//! Preemption's evictions, through the Eviction API (POST `pods/NAME/eviction`), so the API server
//! enforces the victims' PodDisruptionBudgets: a budget that forbids one answers 429 and the pod stays.
//! Thin: which pods to evict is the core's decision (`mlsched::gang::preempt`), carried in a
//! [`PreemptionOrder`].

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, EvictParams, PostParams, Preconditions};
use tracing::debug;

use crate::error::{ErrorKind, cause_of};
use crate::leader::Fence;
use crate::ratelimit::Limiter;
use crate::state::PreemptionOrder;
use crate::translate::PodRef;

/// Why a preemption's evictions stopped short.
#[derive(Debug, thiserror::Error)]
pub enum EvictError {
    /// The API server refused the eviction: 429 when a PodDisruptionBudget forbids it, or any other error.
    #[error("eviction of {pod} refused: {source}")]
    Refused {
        pod: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// This instance stopped leading before the eviction's turn: the new leader decides afresh.
    #[error("eviction of {pod} not sent: this instance does not lead")]
    NotSent { pod: String },
}

impl EvictError {
    /// What repeated failures are logged under.
    pub fn cause(&self) -> std::borrow::Cow<'static, str> {
        match self {
            EvictError::Refused { source, .. } => cause_of(source),
            EvictError::NotSent { .. } => "not sent".into(),
        }
    }
}

/// An order carried out, or where it stopped.
#[derive(Debug)]
pub struct EvictionOutcome {
    pub order: PreemptionOrder,
    pub result: Result<(), EvictError>,
}

/// Carries out preemption orders in tasks of their own, on the binds' budget, only while this instance
/// leads.
#[derive(Clone)]
pub struct Evictor {
    client: Client,
    limiter: Arc<Limiter>,
    fence: Fence,
    done: Arc<dyn Fn(EvictionOutcome) + Send + Sync>,
}

impl Evictor {
    pub fn new(
        client: Client,
        limiter: Arc<Limiter>,
        fence: Fence,
        done: impl Fn(EvictionOutcome) + Send + Sync + 'static,
    ) -> Self {
        Evictor { client, limiter, fence, done: Arc::new(done) }
    }

    /// Asks for every victim's eviction as a dry run first (the server checks each against its
    /// PodDisruptionBudgets without evicting), then evicts them one after the other; the first refusal
    /// stops the rest. A budget that allows fewer disruptions than the victims it covers passes each dry
    /// run alone and refuses a later eviction: what was evicted by then is not undone (those pods were of
    /// lower priority), and the preemptor's room is not made.
    pub fn submit(&self, order: PreemptionOrder) {
        let this = self.clone();
        tokio::spawn(async move {
            let result = this.carry_out(&order).await;
            (this.done)(EvictionOutcome { order, result });
        });
    }

    async fn carry_out(&self, order: &PreemptionOrder) -> Result<(), EvictError> {
        for dry_run in [true, false] {
            for (victim, _) in &order.victims {
                if !self.fence.holds() {
                    return Err(EvictError::NotSent { pod: victim.key() });
                }
                self.limiter.acquire().await;
                evict(&self.client, victim, dry_run).await?;
            }
        }
        Ok(())
    }
}

/// One eviction. The pod's uid is a precondition, so a pod re-created under the same name is not evicted
/// in its place; a pod gone already is as good as evicted.
async fn evict(client: &Client, victim: &PodRef, dry_run: bool) -> Result<(), EvictError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &victim.namespace);
    let preconditions =
        (!victim.uid.is_empty()).then(|| Preconditions { uid: Some(victim.uid.clone()), resource_version: None });
    let params = EvictParams {
        delete_options: Some(DeleteParams { preconditions, dry_run, ..DeleteParams::default() }),
        post_options: PostParams { dry_run, ..PostParams::default() },
    };
    match api.evict(&victim.name, &params).await {
        Ok(_) => Ok(()),
        Err(e) if ErrorKind::of(&e) == ErrorKind::NotFound => {
            debug!(pod = %victim.key(), "preemption victim gone already");
            Ok(())
        }
        Err(e) => Err(EvictError::Refused { pod: victim.key(), source: Box::new(e) }),
    }
}
