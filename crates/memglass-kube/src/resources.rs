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
    /// spec.resources (pod-level resources, alpha in 1.32, beta and on by default in 1.34) as
    /// given: `Some` whenever the field is present, even empty, because `ComputePodQOS` then
    /// follows it alone (`pod.Spec.Resources != nil`).
    pub(crate) pod_level: Option<Resources>,
    /// `IsPodLevelResourcesSet` (component-helpers `resource/helpers.go`): spec.resources names
    /// cpu, memory or a `hugepages-*` resource in its requests or limits. kubelet's eviction
    /// ranking then ignores the containers' requests altogether.
    pub(crate) pod_level_set: bool,
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
        let pod_level = spec
            .resources
            .as_ref()
            .map(|block| Resources::read(Some(block), "spec.resources"))
            .transpose()?;
        let pod_level_set = spec.resources.as_ref().is_some_and(|block| {
            [block.requests.as_ref(), block.limits.as_ref()]
                .into_iter()
                .flatten()
                .flat_map(BTreeMap::keys)
                .any(|name| name == "cpu" || name == "memory" || name.starts_with("hugepages-"))
        });
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
            pod_level_set,
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
    /// `spec.overhead.memory` is added last, even to nothing (`addResourceList`). `None` when
    /// none of these names memory.
    pub(crate) fn memory_request(&self) -> Option<Quantity> {
        let mut total = self.containers_memory_request();
        if let Some(pod) = self.pod_level.and_then(|p| p.requests.memory) {
            total = Some(pod);
        }
        match (total, self.overhead_memory) {
            (Some(t), Some(o)) => Some(t + o),
            (t, o) => t.or(o),
        }
    }

    /// The memory request kubelet's eviction ranking subtracts from a pod's working set
    /// (`rankMemoryPressure` → `exceedMemoryRequests` and `memory`), which is not quite the
    /// scheduler's: `pkg/api/v1/resource/helpers.go` `GetResourceRequestQuantity` calls
    /// `PodRequests` with `SkipContainerLevelResources: IsPodLevelResourcesSet(pod)` and
    /// `ExcludeOverhead: true`, then adds `spec.overhead.memory` only "if the resource total is
    /// non-zero". So a pod with only RuntimeClass overhead requests nothing here, and a pod
    /// whose pod-level `resources` names cpu (or hugepages) but not memory requests nothing
    /// either, whatever its containers ask. `None` = no request (kubelet's zero).
    pub(crate) fn eviction_memory_request(&self) -> Option<Quantity> {
        let request = if self.pod_level_set {
            self.pod_level.and_then(|p| p.requests.memory)
        } else {
            self.containers_memory_request()
        };
        match (request, self.overhead_memory) {
            (Some(r), Some(o)) if !r.is_zero() => Some(r + o),
            (r, _) => r,
        }
    }

    /// `AggregateContainerRequests` for memory: `None` when no container names it.
    fn containers_memory_request(&self) -> Option<Quantity> {
        let declared = self.app.iter().any(|r| r.requests.memory.is_some())
            || self.init.iter().any(|(r, _)| r.requests.memory.is_some());
        declared.then(|| {
            effective(
                self.app
                    .iter()
                    .map(|r| r.requests.memory.unwrap_or_default()),
                self.init
                    .iter()
                    .map(|(r, sidecar)| (r.requests.memory.unwrap_or_default(), *sidecar)),
            )
        })
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
    /// summed requests equal the summed limits for each; Burstable otherwise. When the pod has
    /// a `spec.resources` block at all (`pod.Spec.Resources != nil`, PodLevelResources on), it is
    /// used alone, instead of the containers': one that names neither cpu nor memory makes the
    /// pod BestEffort, whatever its containers declare.
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

    // ---- Kubernetes' own tables, ported. Pods are written as the JSON of their spec (the
    // ---- same k8s-openapi types `--pods` reads), each row naming its origin.

    use serde_json::{json, Value};

    /// A `resources` block: `requests` and `limits` as (name, quantity) pairs, an empty list
    /// an empty map (Go's `getResourceList("", "")`).
    fn rr(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Value {
        let map = |pairs: &[(&str, &str)]| {
            Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                    .collect(),
            )
        };
        json!({"requests": map(requests), "limits": map(limits)})
    }

    fn ctr(resources: Value) -> Value {
        json!({"name": "c", "resources": resources})
    }

    /// A restartable init container (`restartPolicy: Always`, a sidecar).
    fn sidecar(resources: Value) -> Value {
        json!({"name": "s", "restartPolicy": "Always", "resources": resources})
    }

    fn spec(
        containers: Vec<Value>,
        init: Vec<Value>,
        pod_level: Option<Value>,
        overhead: &[(&str, &str)],
    ) -> PodResources {
        let mut spec = json!({"containers": containers, "initContainers": init});
        if let Some(pod_level) = pod_level {
            spec["resources"] = pod_level;
        }
        if !overhead.is_empty() {
            spec["overhead"] = rr(overhead, &[])["requests"].clone();
        }
        let spec: PodSpec = match serde_json::from_value(spec) {
            Ok(spec) => spec,
            Err(e) => panic!("spec: {e}"),
        };
        match PodResources::read(&spec) {
            Ok(r) => r,
            Err(e) => panic!("{}: {}", e.field, e.source),
        }
    }

    fn q(s: &str) -> Quantity {
        match Quantity::parse(s) {
            Ok(q) => q,
            Err(e) => panic!("{e}"),
        }
    }

    /// `pkg/apis/core/v1/helper/qos/qos_test.go` `TestComputePodQOS`, every row (the
    /// pod-level rows with PodLevelResources on, as memglass assumes), then the case of a
    /// pod-level `resources` that names neither cpu nor memory, which `ComputePodQOS` reads
    /// alone (`pod.Spec.Resources != nil`).
    #[test]
    fn kubernetes_compute_pod_qos() {
        use QosClass::{BestEffort as BE, Burstable as BU, Guaranteed as G};
        let be = || ctr(rr(&[], &[]));
        // Go's getResourceList(cpu, memory): an empty string leaves the resource out.
        fn pick<'a>((cpu, memory): (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
            [("cpu", cpu), ("memory", memory)]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect()
        }
        let r = |req, lim| rr(&pick(req), &pick(lim));
        let c = |req, lim| ctr(r(req, lim));
        let rows: Vec<(&str, PodResources, QosClass)> = vec![
            (
                "guaranteed",
                spec(
                    vec![c(("100m", "100Mi"), ("100m", "100Mi"))],
                    vec![],
                    None,
                    &[],
                ),
                G,
            ),
            (
                "guaranteed-guaranteed",
                spec(
                    vec![
                        c(("100m", "100Mi"), ("100m", "100Mi")),
                        c(("100m", "100Mi"), ("100m", "100Mi")),
                    ],
                    vec![],
                    None,
                    &[],
                ),
                G,
            ),
            (
                "best-effort-best-effort",
                spec(vec![be(), be()], vec![], None, &[]),
                BE,
            ),
            ("best-effort", spec(vec![be()], vec![], None, &[]), BE),
            (
                "best-effort-burstable",
                spec(vec![be(), c(("1", ""), ("2", ""))], vec![], None, &[]),
                BU,
            ),
            (
                "best-effort-guaranteed",
                spec(
                    vec![be(), c(("10m", "100Mi"), ("10m", "100Mi"))],
                    vec![],
                    None,
                    &[],
                ),
                BU,
            ),
            (
                "burstable-cpu-guaranteed-memory",
                spec(vec![c(("", "100Mi"), ("", "100Mi"))], vec![], None, &[]),
                BU,
            ),
            (
                "burstable-no-limits",
                spec(vec![c(("100m", "100Mi"), ("", ""))], vec![], None, &[]),
                BU,
            ),
            (
                "burstable-guaranteed",
                spec(
                    vec![
                        c(("1", "100Mi"), ("2", "100Mi")),
                        c(("100m", "100Mi"), ("100m", "100Mi")),
                    ],
                    vec![],
                    None,
                    &[],
                ),
                BU,
            ),
            (
                "burstable-unbounded-but-requests-match-limits",
                spec(
                    vec![
                        c(("100m", "100Mi"), ("200m", "200Mi")),
                        c(("100m", "100Mi"), ("", "")),
                    ],
                    vec![],
                    None,
                    &[],
                ),
                BU,
            ),
            (
                "burstable-1",
                spec(
                    vec![c(("10m", "100Mi"), ("100m", "200Mi"))],
                    vec![],
                    None,
                    &[],
                ),
                BU,
            ),
            (
                "burstable-2",
                spec(vec![c(("0", "0"), ("100m", "200Mi"))], vec![], None, &[]),
                BU,
            ),
            (
                "best-effort-hugepages",
                spec(
                    vec![ctr(rr(
                        &[("cpu", "0"), ("memory", "0"), ("hugepages-2Mi", "1Gi")],
                        &[("cpu", "0"), ("memory", "0"), ("hugepages-2Mi", "1Gi")],
                    ))],
                    vec![],
                    None,
                    &[],
                ),
                BE,
            ),
            (
                "init-container",
                spec(
                    vec![be()],
                    vec![c(("10m", "100Mi"), ("100m", "200Mi"))],
                    None,
                    &[],
                ),
                BU,
            ),
            (
                "guaranteed-with-pod-level-resources",
                spec(
                    vec![be()],
                    vec![],
                    Some(r(("10m", "100Mi"), ("10m", "100Mi"))),
                    &[],
                ),
                G,
            ),
            (
                "guaranteed-with-pod-and-container-level-resources",
                spec(
                    vec![c(("3m", "10Mi"), ("5m", "20Mi"))],
                    vec![],
                    Some(r(("10m", "100Mi"), ("10m", "100Mi"))),
                    &[],
                ),
                G,
            ),
            (
                "burstable-with-pod-level-resources",
                spec(
                    vec![be()],
                    vec![],
                    Some(r(("10m", "10Mi"), ("20m", "50Mi"))),
                    &[],
                ),
                BU,
            ),
            (
                "burstable-with-pod-and-container-level-resources",
                spec(
                    vec![c(("5m", "10Mi"), ("5m", "10Mi"))],
                    vec![],
                    Some(r(("10m", "10Mi"), ("20m", "50Mi"))),
                    &[],
                ),
                BU,
            ),
            (
                "burstable-with-pod-and-container-level-requests",
                spec(
                    vec![c(("5m", "10Mi"), ("", ""))],
                    vec![],
                    Some(r(("10m", "10Mi"), ("", ""))),
                    &[],
                ),
                BU,
            ),
            (
                "burstable-with-pod-and-container-level-resources-2",
                spec(
                    vec![
                        c(("5m", "10Mi"), ("", "")),
                        c(("5m", "10Mi"), ("5m", "10Mi")),
                    ],
                    vec![],
                    Some(r(("10m", "10Mi"), ("5m", ""))),
                    &[],
                ),
                BU,
            ),
            // Pod-level resources naming neither cpu nor memory: BestEffort, whatever the
            // containers say (qos.go, `pod.Spec.Resources != nil`).
            (
                "(pod-level resources: empty)",
                spec(
                    vec![c(("100m", "100Mi"), ("100m", "100Mi"))],
                    vec![],
                    Some(json!({})),
                    &[],
                ),
                BE,
            ),
            (
                "(pod-level resources: hugepages only)",
                spec(
                    vec![c(("100m", "100Mi"), ("100m", "100Mi"))],
                    vec![],
                    Some(rr(&[("hugepages-2Mi", "2Mi")], &[("hugepages-2Mi", "2Mi")])),
                    &[],
                ),
                BE,
            ),
        ];
        for (name, pod, expected) in rows {
            assert_eq!(pod.qos_class(), expected, "TestComputePodQOS/{name}");
        }
    }

    /// `staging/src/k8s.io/component-helpers/resource/helpers_test.go`: `TestPodResourceRequests`
    /// (the rows without status resources: init containers, overhead, restartable init
    /// containers) and `TestPodLevelResourceRequests` (default options), through the
    /// scheduler's request ([`PodResources::memory_request`], [`PodResources::cpu_request`]).
    #[test]
    fn component_helpers_pod_requests() {
        let cpu = |v: &str| rr(&[("cpu", v)], &[]);
        let both = |memory: &str, cpu: &str| rr(&[("memory", memory), ("cpu", cpu)], &[]);
        // (origin, pod, expected cpu, expected memory)
        let rows: Vec<(&str, PodResources, &str, Option<&str>)> = vec![
            (
                "TestPodResourceRequests/nil options, larger init container",
                spec(vec![ctr(cpu("1"))], vec![ctr(cpu("4"))], None, &[]),
                "4",
                None,
            ),
            (
                "TestPodResourceRequests/nil options, larger containers",
                spec(vec![ctr(cpu("2")), ctr(cpu("3"))], vec![ctr(cpu("2"))], None, &[]),
                "5",
                None,
            ),
            (
                "TestPodResourceRequests/pod overhead included",
                spec(
                    vec![ctr(cpu("2")), ctr(cpu("3"))],
                    vec![ctr(cpu("2"))],
                    None,
                    &[("cpu", "1"), ("memory", "1Gi")],
                ),
                "6",
                Some("1Gi"),
            ),
            (
                "TestPodResourceRequests/restartable init container",
                spec(vec![ctr(cpu("1"))], vec![sidecar(cpu("1"))], None, &[]),
                "2",
                None,
            ),
            (
                "TestPodResourceRequests/multiple restartable init containers",
                spec(
                    vec![ctr(cpu("1"))],
                    vec![ctr(cpu("5")), sidecar(cpu("1")), sidecar(cpu("2")), sidecar(cpu("3"))],
                    None,
                    &[],
                ),
                "7",
                None,
            ),
            (
                "TestPodResourceRequests/multiple restartable and regular init containers",
                spec(
                    vec![ctr(cpu("1"))],
                    vec![
                        ctr(cpu("5")),
                        sidecar(cpu("1")),
                        sidecar(cpu("2")),
                        ctr(cpu("5")),
                        sidecar(cpu("3")),
                    ],
                    None,
                    &[],
                ),
                "8",
                None,
            ),
            (
                "TestPodResourceRequests/restartable-init, init and regular",
                spec(vec![ctr(cpu("100"))], vec![sidecar(cpu("10")), ctr(cpu("200"))], None, &[]),
                "210",
                None,
            ),
            ("TestPodLevelResourceRequests/nil", spec(vec![], vec![], Some(rr(&[], &[])), &[]), "0", None),
            (
                "TestPodLevelResourceRequests/pod level memory resource with SkipPodLevelResources false",
                spec(vec![], vec![], Some(rr(&[("memory", "2Mi")], &[])), &[]),
                "0",
                Some("2Mi"),
            ),
            (
                "TestPodLevelResourceRequests/pod level memory and container level cpu resources with SkipPodLevelResources false",
                spec(vec![ctr(cpu("2m"))], vec![], Some(rr(&[("memory", "2Mi")], &[])), &[]),
                "2m",
                Some("2Mi"),
            ),
            (
                "TestPodLevelResourceRequests/pod level unsupported resources set at pod-level with SkipPodLevelResources false",
                spec(
                    vec![ctr(rr(&[("memory", "3Mi")], &[]))],
                    vec![],
                    Some(rr(&[("storage", "2Mi")], &[])),
                    &[],
                ),
                "0",
                Some("3Mi"),
            ),
            (
                "TestPodLevelResourceRequests/only container level resources set with SkipPodLevelResources false",
                spec(vec![ctr(both("3Mi", "2m"))], vec![], Some(rr(&[], &[])), &[]),
                "2m",
                Some("3Mi"),
            ),
            (
                "TestPodLevelResourceRequests/both container-level and pod-level resources set with SkipPodLevelResources false",
                spec(vec![ctr(both("3Mi", "2m"))], vec![], Some(both("6Mi", "8m")), &[]),
                "8m",
                Some("6Mi"),
            ),
            (
                "TestPodLevelResourceRequests/container-level resources and init container set with SkipPodLevelResources false",
                spec(vec![ctr(both("3Mi", "2m"))], vec![ctr(both("5Mi", "4m"))], Some(rr(&[], &[])), &[]),
                "4m",
                Some("5Mi"),
            ),
            (
                "TestPodLevelResourceRequests/container-level resources and sidecar container set with SkipPodLevelResources false",
                spec(vec![ctr(both("3Mi", "2m"))], vec![sidecar(both("5Mi", "4m"))], Some(rr(&[], &[])), &[]),
                "6m",
                Some("8Mi"),
            ),
            (
                "TestPodLevelResourceRequests/container-level resources, init and sidecar container set with SkipPodLevelResources false",
                spec(
                    vec![ctr(both("3Mi", "2m"))],
                    vec![sidecar(both("5Mi", "4m")), ctr(both("6Mi", "8m"))],
                    Some(rr(&[], &[])),
                    &[],
                ),
                "12m",
                Some("11Mi"),
            ),
            (
                "TestPodLevelResourceRequests/pod-level resources, container-level resources, init and sidecar container set with SkipPodLevelResources false",
                spec(
                    vec![ctr(both("3Mi", "2m"))],
                    vec![sidecar(both("5Mi", "4m")), ctr(both("6Mi", "8m"))],
                    Some(both("15Mi", "18m")),
                    &[],
                ),
                "18m",
                Some("15Mi"),
            ),
            (
                "TestPodLevelResourceRequests/pod-level resources, hugepage request/limit single page size",
                spec(
                    vec![],
                    vec![],
                    Some(rr(&[("memory", "10Mi"), ("hugepages-2Mi", "2Mi")], &[("hugepages-2Mi", "2Mi")])),
                    &[],
                ),
                "0",
                Some("10Mi"),
            ),
            (
                "TestPodLevelResourceRequests/pod-level resources, hugepage request/limit multiple page sizes",
                spec(
                    vec![],
                    vec![],
                    Some(rr(
                        &[("cpu", "1"), ("hugepages-2Mi", "2Mi"), ("hugepages-1Gi", "1Gi")],
                        &[("hugepages-2Mi", "2Mi"), ("hugepages-1Gi", "1Gi")],
                    )),
                    &[],
                ),
                "1",
                None,
            ),
            (
                "TestPodLevelResourceRequests/pod-level resources, container-level resources, hugepage request/limit single page size",
                spec(
                    vec![ctr(rr(&[("hugepages-2Mi", "6Mi")], &[("hugepages-2Mi", "6Mi")]))],
                    vec![],
                    Some(rr(&[("cpu", "1"), ("hugepages-2Mi", "10Mi")], &[("hugepages-2Mi", "10Mi")])),
                    &[],
                ),
                "1",
                None,
            ),
            (
                "TestPodLevelResourceRequests/pod-level resources, container-level resources, hugepage request/limit multiple page sizes between pod-level and container-level",
                spec(
                    vec![ctr(rr(
                        &[("memory", "4Mi"), ("hugepages-1Gi", "1Gi")],
                        &[("hugepages-1Gi", "1Gi")],
                    ))],
                    vec![],
                    Some(rr(&[("cpu", "1"), ("hugepages-2Mi", "10Mi")], &[("hugepages-2Mi", "10Mi")])),
                    &[],
                ),
                "1",
                Some("4Mi"),
            ),
        ];
        for (origin, pod, cpu, memory) in rows {
            assert_eq!(pod.cpu_request(), q(cpu), "{origin}: cpu");
            assert_eq!(pod.memory_request(), memory.map(q), "{origin}: memory");
        }
    }

    /// kubelet's eviction request, `pkg/api/v1/resource/helpers.go`
    /// `GetResourceRequestQuantity(pod, memory)`: `PodRequests` with
    /// `SkipContainerLevelResources: IsPodLevelResourcesSet(pod)` and `ExcludeOverhead`, then the
    /// overhead only onto a non-zero total. The pods are those of the component-helpers rows
    /// above where the two requests differ, and the overhead cases.
    #[test]
    fn eviction_request_as_get_resource_request_quantity() {
        let mem = |v: &str| rr(&[("memory", v)], &[]);
        // (case, pod, scheduler's request, eviction ranking's request)
        let rows: Vec<(&str, PodResources, Option<&str>, Option<&str>)> = vec![
            (
                "overhead only: the scheduler reserves it, the ranking sees no request",
                spec(vec![ctr(rr(&[], &[]))], vec![], None, &[("memory", "1Gi")]),
                Some("1Gi"),
                None,
            ),
            (
                "overhead onto an explicit zero request: still zero",
                spec(vec![ctr(mem("0"))], vec![], None, &[("memory", "1Gi")]),
                Some("1Gi"),
                Some("0"),
            ),
            (
                "overhead onto a request: added",
                spec(vec![ctr(mem("100Mi"))], vec![], None, &[("memory", "10Mi")]),
                Some("110Mi"),
                Some("110Mi"),
            ),
            (
                "pod-level cpu only: the containers' memory is not the pod's request",
                spec(
                    vec![ctr(mem("4Mi"))],
                    vec![],
                    Some(rr(&[("cpu", "1")], &[])),
                    &[("memory", "1Mi")],
                ),
                Some("5Mi"),
                None,
            ),
            (
                "pod-level hugepages only (IsPodLevelResourcesSet counts hugepages-*)",
                spec(
                    vec![ctr(rr(
                        &[("memory", "4Mi"), ("hugepages-1Gi", "1Gi")],
                        &[("hugepages-1Gi", "1Gi")],
                    ))],
                    vec![],
                    Some(rr(
                        &[("cpu", "1"), ("hugepages-2Mi", "10Mi")],
                        &[("hugepages-2Mi", "10Mi")],
                    )),
                    &[],
                ),
                Some("4Mi"),
                None,
            ),
            (
                "pod-level storage only: not pod-level resources, containers count",
                spec(
                    vec![ctr(mem("3Mi"))],
                    vec![],
                    Some(rr(&[("storage", "2Mi")], &[])),
                    &[],
                ),
                Some("3Mi"),
                Some("3Mi"),
            ),
            (
                "pod-level memory, with overhead",
                spec(
                    vec![ctr(mem("3Mi"))],
                    vec![],
                    Some(mem("6Mi")),
                    &[("memory", "1Mi")],
                ),
                Some("7Mi"),
                Some("7Mi"),
            ),
            (
                "sidecars and init containers as PodRequests",
                spec(
                    vec![ctr(mem("3Mi"))],
                    vec![sidecar(mem("5Mi")), ctr(mem("6Mi"))],
                    None,
                    &[],
                ),
                Some("11Mi"),
                Some("11Mi"),
            ),
        ];
        for (case, pod, scheduler, eviction) in rows {
            assert_eq!(pod.memory_request(), scheduler.map(q), "{case}: scheduler");
            assert_eq!(
                pod.eviction_memory_request(),
                eviction.map(q),
                "{case}: eviction"
            );
        }
    }
}
