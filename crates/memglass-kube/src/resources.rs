//! A pod's memory request and limit and its QoS class, computed the way kubelet and the
//! scheduler compute them (Kubernetes 1.28–1.34 sources, cited per function).
//!
//! Only `cpu` and `memory` matter here: they are the only resources QoS looks at, and memory is
//! the only one memglass sizes. Everything is summed as exact [`Quantity`] values and rounded up
//! to whole bytes once, at the end, as `Quantity.Value()` would.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use memglass_identify::QosClass;

use crate::quantity::{Quantity, QuantityError};

/// The cpu and memory entries of one `requests` or `limits` map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CpuMemory {
    pub(crate) cpu: Option<Quantity>,
    pub(crate) memory: Option<Quantity>,
}

impl CpuMemory {
    fn is_empty(self) -> bool {
        self.cpu.is_none() && self.memory.is_none()
    }
}

/// Requests and limits of one container (or of the pod, for pod-level resources).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Resources {
    pub(crate) requests: CpuMemory,
    pub(crate) limits: CpuMemory,
}

/// Where a quantity failed to parse: `field` names it (`resources.limits.memory`).
#[derive(Debug)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) source: QuantityError,
}

impl Resources {
    /// Reads a `resources` block. A limit without a request gets the limit as its request,
    /// which is the API server's defaulting (`SetDefaults_ResourceList` for containers and,
    /// since 1.32, for pod-level resources); objects read back from the API already carry it.
    pub(crate) fn read(
        block: Option<&ResourceRequirements>,
        prefix: &str,
    ) -> Result<Resources, FieldError> {
        let Some(block) = block else {
            return Ok(Resources::default());
        };
        let limits = read_map(block.limits.as_ref(), &format!("{prefix}.limits"))?;
        let mut requests = read_map(block.requests.as_ref(), &format!("{prefix}.requests"))?;
        requests.cpu = requests.cpu.or(limits.cpu);
        requests.memory = requests.memory.or(limits.memory);
        Ok(Resources { requests, limits })
    }
}

fn read_map(
    map: Option<&BTreeMap<String, ApiQuantity>>,
    prefix: &str,
) -> Result<CpuMemory, FieldError> {
    let Some(map) = map else {
        return Ok(CpuMemory::default());
    };
    let get = |key: &str| -> Result<Option<Quantity>, FieldError> {
        map.get(key)
            .map(|q| {
                Quantity::parse(&q.0).map_err(|source| FieldError {
                    field: format!("{prefix}.{key}"),
                    source,
                })
            })
            .transpose()
    };
    Ok(CpuMemory {
        cpu: get("cpu")?,
        memory: get("memory")?,
    })
}

/// The resource facts of a pod spec that the formulas below need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PodResources {
    /// spec.containers, in order.
    pub(crate) app: Vec<Resources>,
    /// spec.initContainers, in order, each with `true` for a restartable (sidecar) one
    /// (`restartPolicy: Always`, Kubernetes 1.28+).
    pub(crate) init: Vec<(Resources, bool)>,
    /// spec.resources (pod-level resources, alpha in 1.32, beta in 1.34), when it names cpu or
    /// memory.
    pub(crate) pod_level: Option<Resources>,
    /// spec.overhead.memory (RuntimeClass overhead).
    pub(crate) overhead_memory: Option<Quantity>,
    /// spec.overhead.cpu.
    pub(crate) overhead_cpu: Option<Quantity>,
}

impl PodResources {
    /// Reads them from a pod spec. Ephemeral containers have no resources and are not counted
    /// (as in kubelet).
    pub(crate) fn read(spec: &PodSpec) -> Result<PodResources, FieldError> {
        let app = spec
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| container(c, &format!("spec.containers[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let init = spec
            .init_containers
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, c)| {
                let sidecar = c.restart_policy.as_deref() == Some("Always");
                container(c, &format!("spec.initContainers[{i}]")).map(|r| (r, sidecar))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pod_level = Resources::read(spec.resources.as_ref(), "spec.resources")?;
        let pod_level =
            (!(pod_level.requests.is_empty() && pod_level.limits.is_empty())).then_some(pod_level);
        let overhead = |key: &str| {
            spec.overhead
                .as_ref()
                .and_then(|o| o.get(key))
                .map(|q| {
                    Quantity::parse(&q.0).map_err(|source| FieldError {
                        field: format!("spec.overhead.{key}"),
                        source,
                    })
                })
                .transpose()
        };
        Ok(PodResources {
            app,
            init,
            pod_level,
            overhead_memory: overhead("memory")?,
            overhead_cpu: overhead("cpu")?,
        })
    }

    /// The pod's effective memory request: what the scheduler compares with allocatable and
    /// what kubelet's eviction ranking subtracts. `k8s.io/component-helpers/resource`
    /// `PodRequests`: app containers and restartable (sidecar) init containers are summed; each
    /// ordinary init container runs alone, next to the sidecars started before it; the pod
    /// needs the larger of the two (`max(Σ app + Σ sidecars, max(init_i + sidecars before i))`);
    /// pod-level `spec.resources.requests.memory`, when set, replaces that; RuntimeClass
    /// `spec.overhead.memory` is added last. `None` when none of these names memory.
    pub(crate) fn memory_request(&self) -> Option<Quantity> {
        let declared = self.app.iter().any(|r| r.requests.memory.is_some())
            || self.init.iter().any(|(r, _)| r.requests.memory.is_some());
        let mut total = declared.then(|| {
            effective(
                self.app
                    .iter()
                    .map(|r| r.requests.memory.unwrap_or_default()),
                self.init
                    .iter()
                    .map(|(r, sidecar)| (r.requests.memory.unwrap_or_default(), *sidecar)),
            )
        });
        if let Some(pod) = self.pod_level.and_then(|p| p.requests.memory) {
            total = Some(pod);
        }
        match (total, self.overhead_memory) {
            (Some(t), Some(o)) => Some(t + o),
            (t, o) => t.or(o),
        }
    }

    /// The pod's cpu request as the scheduler counts it (the same rule as
    /// [`PodResources::memory_request`] over `requests.cpu`), zero when nothing requests cpu.
    pub(crate) fn cpu_request(&self) -> Quantity {
        let mut total = effective(
            self.app.iter().map(|r| r.requests.cpu.unwrap_or_default()),
            self.init
                .iter()
                .map(|(r, sidecar)| (r.requests.cpu.unwrap_or_default(), *sidecar)),
        );
        if let Some(pod) = self.pod_level.and_then(|p| p.requests.cpu) {
            total = pod;
        }
        total + self.overhead_cpu.unwrap_or_default()
    }

    /// The pod's memory limit: the pod cgroup's `memory.max`/`memory.limit_in_bytes` as kubelet
    /// sets it (`pkg/kubelet/cm/helpers_linux.go` `ResourceConfigForPod`). Only when every
    /// container, init containers included, declares a non-zero memory limit (otherwise the pod
    /// cgroup is unlimited and this is `None`); then the same sum/max as requests over the
    /// limits (`PodLimits`), plus the overhead. A pod-level `spec.resources.limits.memory`
    /// replaces the container-derived value.
    pub(crate) fn memory_limit(&self) -> Option<Quantity> {
        let all_declared = !self.app.is_empty()
            && self
                .app
                .iter()
                .chain(self.init.iter().map(|(r, _)| r))
                .all(|r| r.limits.memory.is_some_and(|q| !q.is_zero()));
        let mut total = all_declared.then(|| {
            effective(
                self.app.iter().map(|r| r.limits.memory.unwrap_or_default()),
                self.init
                    .iter()
                    .map(|(r, sidecar)| (r.limits.memory.unwrap_or_default(), *sidecar)),
            )
        });
        if let Some(pod) = self.pod_level.and_then(|p| p.limits.memory) {
            total = (!pod.is_zero()).then_some(pod);
        }
        total.map(|t| t + self.overhead_memory.unwrap_or_default())
    }

    /// The QoS class kubelet would assign (`pkg/apis/core/helper/qos` `ComputePodQOS`): only
    /// cpu and memory count, zero values are ignored; BestEffort when no container (app or
    /// init) requests or limits either; Guaranteed when every container limits both and the
    /// summed requests equal the summed limits for each; Burstable otherwise. Pod-level
    /// resources, when set, are used instead of the containers'.
    pub(crate) fn qos_class(&self) -> QosClass {
        let all: Vec<Resources> = match self.pod_level {
            Some(pod) => vec![pod],
            None => self
                .app
                .iter()
                .copied()
                .chain(self.init.iter().map(|(r, _)| *r))
                .collect(),
        };
        let positive = |q: Option<Quantity>| q.filter(|q| !q.is_zero());
        let mut requests = [None::<Quantity>; 2];
        let mut limits = [None::<Quantity>; 2];
        let mut guaranteed = true;
        for r in &all {
            for (slot, q) in [r.requests.cpu, r.requests.memory].into_iter().enumerate() {
                if let Some(q) = positive(q) {
                    requests[slot] = Some(requests[slot].unwrap_or_default() + q);
                }
            }
            let mut found = 0;
            for (slot, q) in [r.limits.cpu, r.limits.memory].into_iter().enumerate() {
                if let Some(q) = positive(q) {
                    limits[slot] = Some(limits[slot].unwrap_or_default() + q);
                    found += 1;
                }
            }
            if found < 2 {
                guaranteed = false;
            }
        }
        let count = |m: &[Option<Quantity>; 2]| m.iter().filter(|q| q.is_some()).count();
        if count(&requests) == 0 && count(&limits) == 0 {
            return QosClass::BestEffort;
        }
        if guaranteed
            && requests
                .iter()
                .zip(&limits)
                .all(|(req, lim)| req.is_none() || req == lim)
            && count(&requests) == count(&limits)
        {
            return QosClass::Guaranteed;
        }
        QosClass::Burstable
    }
}

fn container(c: &Container, prefix: &str) -> Result<Resources, FieldError> {
    Resources::read(c.resources.as_ref(), &format!("{prefix}.resources"))
}

/// `max(Σ app + Σ sidecars, max over ordinary init containers of (own + sidecars started
/// before it), running Σ of sidecars)`: the init/sidecar arithmetic of `PodRequests`.
fn effective(
    app: impl Iterator<Item = Quantity>,
    init: impl Iterator<Item = (Quantity, bool)>,
) -> Quantity {
    let mut total: Quantity = app.sum();
    let mut sidecars = Quantity::ZERO;
    let mut init_peak = Quantity::ZERO;
    for (q, sidecar) in init {
        let during = if sidecar {
            total = total + q;
            sidecars = sidecars + q;
            sidecars
        } else {
            q + sidecars
        };
        init_peak = init_peak.max(during);
    }
    total.max(init_peak)
}

/// Parses `status.qosClass` (Kubernetes spelling).
pub(crate) fn parse_qos(s: &str) -> Option<QosClass> {
    match s {
        "Guaranteed" => Some(QosClass::Guaranteed),
        "Burstable" => Some(QosClass::Burstable),
        "BestEffort" => Some(QosClass::BestEffort),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! The formulas on resource values (not JSON): the fixture tests in `lib.rs` check them on
    //! real pods; these cover the combinations no recorded pod has.
    use super::*;

    fn mi(n: u64) -> Option<Quantity> {
        Some(Quantity::from_units(n << 20))
    }

    fn res(req: Option<u64>, lim: Option<u64>) -> Resources {
        let mut r = Resources::default();
        r.requests.memory = req.and_then(mi);
        r.limits.memory = lim.and_then(mi);
        r.requests.cpu = r.requests.memory.map(|_| Quantity::from_units(1));
        r.limits.cpu = r.limits.memory.map(|_| Quantity::from_units(1));
        r
    }

    fn pod(app: &[Resources], init: &[(Resources, bool)]) -> PodResources {
        PodResources {
            app: app.to_vec(),
            init: init.to_vec(),
            ..PodResources::default()
        }
    }

    #[test]
    fn init_containers_raise_the_request_only_when_larger() {
        // max(max(init), Σ app): 300 > 100 + 50.
        let p = pod(
            &[res(Some(100), None), res(Some(50), None)],
            &[(res(Some(300), None), false), (res(Some(20), None), false)],
        );
        assert_eq!(p.memory_request(), mi(300));
        // 120 < 100 + 50.
        let p = pod(
            &[res(Some(100), None), res(Some(50), None)],
            &[(res(Some(120), None), false)],
        );
        assert_eq!(p.memory_request(), mi(150));
    }

    #[test]
    fn sidecars_add_to_the_pod_and_to_later_init_containers() {
        // sidecar 64 started first, then an init container of 200: peak 264; app 100 + 64.
        let p = pod(
            &[res(Some(100), None)],
            &[(res(Some(64), None), true), (res(Some(200), None), false)],
        );
        assert_eq!(p.memory_request(), mi(264));
        // An init container before the sidecar does not see it: max(200, 100 + 64).
        let p = pod(
            &[res(Some(100), None)],
            &[(res(Some(200), None), false), (res(Some(64), None), true)],
        );
        assert_eq!(p.memory_request(), mi(200));
    }

    #[test]
    fn overhead_and_pod_level_resources() {
        let mut p = pod(&[res(Some(100), Some(100))], &[]);
        p.overhead_memory = mi(10);
        assert_eq!(p.memory_request(), mi(110));
        assert_eq!(p.memory_limit(), mi(110));
        p.pod_level = Some(res(Some(400), Some(500)));
        assert_eq!(p.memory_request(), mi(410));
        assert_eq!(p.memory_limit(), mi(510));
        assert_eq!(p.qos_class(), QosClass::Burstable);
        // Overhead alone still reserves memory on the node.
        let mut best_effort = pod(&[res(None, None)], &[]);
        best_effort.overhead_memory = mi(10);
        assert_eq!(best_effort.memory_request(), mi(10));
        assert_eq!(best_effort.memory_limit(), None);
        assert_eq!(best_effort.qos_class(), QosClass::BestEffort);
    }

    #[test]
    fn pod_limit_needs_every_container_limited() {
        let p = pod(&[res(Some(100), Some(200)), res(Some(10), None)], &[]);
        assert_eq!(p.memory_limit(), None);
        let p = pod(
            &[res(Some(100), Some(200)), res(Some(10), Some(20))],
            &[(res(Some(300), None), false)],
        );
        assert_eq!(p.memory_limit(), None, "an unlimited init container");
        let p = pod(
            &[res(Some(100), Some(200)), res(Some(10), Some(20))],
            &[(res(Some(300), Some(300)), false)],
        );
        assert_eq!(p.memory_limit(), mi(300));
        assert_eq!(pod(&[], &[]).memory_limit(), None);
    }

    #[test]
    fn qos_classes() {
        assert_eq!(
            pod(
                &[res(Some(64), Some(64))],
                &[(res(Some(32), Some(32)), false)]
            )
            .qos_class(),
            QosClass::Guaranteed
        );
        assert_eq!(
            pod(&[res(Some(64), Some(128))], &[]).qos_class(),
            QosClass::Burstable
        );
        // Guaranteed needs cpu limits too.
        let mut memory_only = res(Some(64), Some(64));
        memory_only.requests.cpu = None;
        memory_only.limits.cpu = None;
        assert_eq!(pod(&[memory_only], &[]).qos_class(), QosClass::Burstable);
        // An init container without resources makes a Guaranteed-looking pod Burstable.
        assert_eq!(
            pod(&[res(Some(64), Some(64))], &[(res(None, None), false)]).qos_class(),
            QosClass::Burstable
        );
        // Zero values count as unset.
        let mut zero = Resources::default();
        zero.requests.memory = Some(Quantity::ZERO);
        assert_eq!(pod(&[zero], &[]).qos_class(), QosClass::BestEffort);
        assert_eq!(pod(&[], &[]).qos_class(), QosClass::BestEffort);
    }
}
