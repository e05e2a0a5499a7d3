//! Reading Kubernetes `AdmissionReview` v1 requests into what the policy needs: the images of
//! a pod (or pod template), where each appears, the namespace, the service account, and the
//! break-glass marker.
//!
//! The body is read twice: first a small view that names the kind and operation (every other
//! field is skipped unparsed), then the request with the typed object of that kind from
//! `k8s-openapi`, through kube-core's `AdmissionRequest`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube_core::{GroupVersionKind, TypeMeta};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The pod label that admits a pod without verification, and audits it (Binary
/// Authorization's break-glass).
pub(crate) const BREAK_GLASS_LABEL: &str = "image-policy.k8s.io/break-glass";
/// The older annotation form of break-glass, still honoured.
pub(crate) const BREAK_GLASS_ANNOTATION: &str = "alpha.image-policy.k8s.io/break-glass";

/// Where a container image is written, as JSON pointer tokens to its `image` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageUse {
    /// The image as written.
    pub(crate) image: String,
    /// The container's name.
    pub(crate) container: String,
    /// Tokens of the JSON pointer to the `image` field, e.g. `spec/containers/0/image`.
    pub(crate) path: Vec<String>,
}

/// A pod, or the pod template of a workload, as the policy sees it.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    /// `Pod`, `Deployment`, …
    pub(crate) kind: String,
    /// The object's name (or its `generateName` prefix when the name is not yet known).
    pub(crate) name: String,
    /// The namespace of the request.
    pub(crate) namespace: Option<String>,
    /// The service account the pods run as (`default` when the spec names none).
    pub(crate) service_account: String,
    /// Whether break-glass was asked for.
    pub(crate) break_glass: bool,
    /// Every image, in spec order: init containers, containers, ephemeral containers.
    pub(crate) images: Vec<ImageUse>,
}

impl Workload {
    /// `Kind/name`, for messages and the audit log.
    pub(crate) fn object(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// A parsed admission request.
#[derive(Debug)]
pub(crate) struct Review {
    /// An admitting response for this request (uid and API version echoed).
    pub(crate) response: AdmissionResponse,
    /// The request uid.
    pub(crate) uid: String,
    /// The pod spec to check; `None` when there is nothing to check (delete, connect, a kind
    /// without a pod spec, a subresource other than ephemeral containers).
    pub(crate) workload: Option<Workload>,
}

/// Why a body is not a usable admission review.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReviewError {
    /// Not an `AdmissionReview` at all; there is no uid to answer with.
    #[error("not an AdmissionReview: {0}")]
    Unreadable(String),
    /// An `AdmissionReview` without a request.
    #[error("the AdmissionReview has no request")]
    NoRequest,
    /// The object does not parse as its kind; answered with the request's uid.
    #[error("cannot read the {kind} in request {uid}: {reason}")]
    Object {
        /// The response to send, denying.
        response: Box<AdmissionResponse>,
        /// The uid.
        uid: String,
        /// The kind.
        kind: String,
        /// The parse error.
        reason: String,
    },
}

#[derive(Deserialize)]
struct PeekReview {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<PeekRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PeekRequest {
    uid: String,
    kind: GroupVersionKind,
    #[serde(default)]
    sub_resource: Option<String>,
    operation: Operation,
}

/// The typed request, without kube-core's flattened `AdmissionReview` envelope (flattening
/// would buffer the whole object before parsing it).
#[derive(Deserialize)]
#[serde(bound = "K: DeserializeOwned + kube_core::Resource")]
struct Envelope<K: kube_core::Resource> {
    request: Option<AdmissionRequest<K>>,
}

/// An admitting response for `uid`.
fn allowing(api_version: String, uid: &str) -> AdmissionResponse {
    // `AdmissionResponse` is non-exhaustive and its other constructor needs the typed request;
    // `invalid` needs nothing, and every field it sets is overwritten here.
    let mut response = AdmissionResponse::invalid("");
    response.types = TypeMeta {
        api_version: if api_version.is_empty() {
            kube_core::admission::META_API_VERSION_V1.to_string()
        } else {
            api_version
        },
        kind: kube_core::admission::META_KIND.to_string(),
    };
    response.uid = uid.to_string();
    response.allowed = true;
    response.result = Default::default();
    response
}

/// Reads an `AdmissionReview` body.
pub(crate) fn parse(body: &[u8]) -> Result<Review, ReviewError> {
    let peek: PeekReview =
        serde_json::from_slice(body).map_err(|e| ReviewError::Unreadable(e.to_string()))?;
    if !peek.kind.is_empty() && peek.kind != kube_core::admission::META_KIND {
        return Err(ReviewError::Unreadable(format!(
            "kind is {:?}, not AdmissionReview",
            peek.kind
        )));
    }
    let request = peek.request.ok_or(ReviewError::NoRequest)?;
    let response = allowing(peek.api_version, &request.uid);
    let nothing = |response| Review {
        response,
        uid: request.uid.clone(),
        workload: None,
    };
    if matches!(request.operation, Operation::Delete | Operation::Connect) {
        return Ok(nothing(response));
    }
    let sub = request.sub_resource.as_deref().unwrap_or("");
    let gvk = &request.kind;
    let typed = Typed {
        uid: &request.uid,
        response,
        body,
    };
    match (gvk.group.as_str(), gvk.kind.as_str(), sub) {
        ("", "Pod", "") => typed.read::<Pod>("Pod", |p| {
            pod(&p.metadata, p.spec.as_ref(), Containers::All)
        }),
        ("", "Pod", "ephemeralcontainers") => typed.read::<Pod>("Pod", |p| {
            pod(&p.metadata, p.spec.as_ref(), Containers::EphemeralOnly)
        }),
        ("apps", "Deployment", "") => typed.read::<Deployment>("Deployment", |d| {
            template(&d.metadata, d.spec.as_ref().map(|s| &s.template), TEMPLATE)
        }),
        ("apps", "ReplicaSet", "") => typed.read::<ReplicaSet>("ReplicaSet", |r| {
            template(
                &r.metadata,
                r.spec.as_ref().and_then(|s| s.template.as_ref()),
                TEMPLATE,
            )
        }),
        ("apps", "StatefulSet", "") => typed.read::<StatefulSet>("StatefulSet", |s| {
            template(&s.metadata, s.spec.as_ref().map(|s| &s.template), TEMPLATE)
        }),
        ("apps", "DaemonSet", "") => typed.read::<DaemonSet>("DaemonSet", |d| {
            template(&d.metadata, d.spec.as_ref().map(|s| &s.template), TEMPLATE)
        }),
        ("batch", "Job", "") => typed.read::<Job>("Job", |j| {
            template(&j.metadata, j.spec.as_ref().map(|s| &s.template), TEMPLATE)
        }),
        ("batch", "CronJob", "") => typed.read::<CronJob>("CronJob", |c| {
            let job = c.spec.as_ref().map(|s| &s.job_template);
            let mut part = template(
                &c.metadata,
                job.and_then(|j| j.spec.as_ref()).map(|s| &s.template),
                CRON_TEMPLATE,
            )?;
            // Labels of the job template reach the pods' owner, not the pods; honour them as
            // the object's own.
            if let Some(meta) = job.and_then(|j| j.metadata.as_ref()) {
                part.metas.push(meta);
            }
            Some(part)
        }),
        ("", "ReplicationController", "") => {
            typed.read::<ReplicationController>("ReplicationController", |r| {
                template(
                    &r.metadata,
                    r.spec.as_ref().and_then(|s| s.template.as_ref()),
                    TEMPLATE,
                )
            })
        }
        // Status updates, scale, bindings, and kinds without pods: nothing to check.
        _ => Ok(nothing(typed.response)),
    }
}

const POD: &[&str] = &["spec"];
const TEMPLATE: &[&str] = &["spec", "template", "spec"];
const CRON_TEMPLATE: &[&str] = &["spec", "jobTemplate", "spec", "template", "spec"];

/// The pod spec inside an object, the metadata that may carry break-glass, and the JSON
/// pointer to the spec.
struct PodPart<'a> {
    /// The object's own metadata first (name, namespace), then the pod template's.
    metas: Vec<&'a ObjectMeta>,
    spec: &'a PodSpec,
    prefix: &'static [&'static str],
    /// Which of its containers the request changes.
    containers: Containers,
}

/// Which containers of a pod spec a request changes, so which images to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Containers {
    /// Init, regular and ephemeral containers: a new pod or pod template.
    All,
    /// Only the ephemeral ones: the `pods/ephemeralcontainers` subresource (`kubectl debug`),
    /// where the pod's other containers already run and were checked when it was created.
    EphemeralOnly,
}

fn pod<'a>(
    meta: &'a ObjectMeta,
    spec: Option<&'a PodSpec>,
    containers: Containers,
) -> Option<PodPart<'a>> {
    Some(PodPart {
        metas: vec![meta],
        spec: spec?,
        prefix: POD,
        containers,
    })
}

fn template<'a>(
    meta: &'a ObjectMeta,
    template: Option<&'a PodTemplateSpec>,
    prefix: &'static [&'static str],
) -> Option<PodPart<'a>> {
    let template = template?;
    let mut metas = vec![meta];
    metas.extend(template.metadata.as_ref());
    Some(PodPart {
        metas,
        spec: template.spec.as_ref()?,
        prefix,
        containers: Containers::All,
    })
}

struct Typed<'b> {
    uid: &'b str,
    response: AdmissionResponse,
    body: &'b [u8],
}

impl Typed<'_> {
    fn read<K>(
        self,
        kind: &str,
        part: impl for<'a> Fn(&'a K) -> Option<PodPart<'a>>,
    ) -> Result<Review, ReviewError>
    where
        K: DeserializeOwned + kube_core::Resource,
    {
        let failed = |response: AdmissionResponse, reason: String| ReviewError::Object {
            response: Box::new(response),
            uid: self.uid.to_string(),
            kind: kind.to_string(),
            reason,
        };
        let envelope: Envelope<K> = match serde_json::from_slice(self.body) {
            Ok(envelope) => envelope,
            Err(e) => return Err(failed(self.response, e.to_string())),
        };
        let Some(request) = envelope.request else {
            return Err(ReviewError::NoRequest);
        };
        let mut workload = request
            .object
            .as_ref()
            .and_then(&part)
            .map(|part| workload(kind, &request, &part));
        // An update is checked for the images it brings, not for those already admitted:
        // relabelling, scaling or finalising a running workload must not start failing the day
        // the policy changes. Every image new to the object is checked as on creation.
        if request.operation == Operation::Update
            && let (Some(w), Some(old)) = (workload.as_mut(), request.old_object.as_ref())
            && let Some(old_part) = part(old)
        {
            let before = workload_images(&old_part);
            w.images.retain(|u| !before.contains(&u.image));
        }
        Ok(Review {
            response: self.response,
            uid: request.uid,
            workload,
        })
    }
}

/// The images written in `part` (as `workload` would list them).
fn workload_images(part: &PodPart<'_>) -> std::collections::HashSet<String> {
    let spec = part.spec;
    let mut images = std::collections::HashSet::new();
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    images.extend(containers.filter_map(|c| c.image.clone()));
    images.extend(
        spec.ephemeral_containers
            .iter()
            .flatten()
            .filter_map(|c| c.image.clone()),
    );
    images
}

/// The service account pods of `spec` run as: `serviceAccountName`, else the deprecated
/// `serviceAccount`, else `default`, as the API server fills it in.
pub(crate) fn service_account(spec: &PodSpec) -> String {
    spec.service_account_name
        .as_deref()
        .or(spec.service_account.as_deref())
        .filter(|sa| !sa.is_empty())
        .unwrap_or("default")
        .to_string()
}

fn workload<K: kube_core::Resource>(
    kind: &str,
    request: &AdmissionRequest<K>,
    part: &PodPart<'_>,
) -> Workload {
    let meta = part.metas.first();
    let name = if !request.name.is_empty() {
        request.name.clone()
    } else {
        meta.and_then(|m| m.name.clone().or_else(|| m.generate_name.clone()))
            .unwrap_or_default()
    };
    let namespace = request
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .or_else(|| meta.and_then(|m| m.namespace.clone()));
    let spec = part.spec;
    let service_account = service_account(spec);
    let break_glass = part.metas.iter().any(|m| {
        is_true(m.labels.as_ref(), BREAK_GLASS_LABEL)
            || is_true(m.annotations.as_ref(), BREAK_GLASS_ANNOTATION)
    });
    let mut images = Vec::new();
    let mut push = |field: &str, index: usize, container: &str, image: Option<&String>| {
        if let Some(image) = image.filter(|i| !i.is_empty()) {
            let mut path: Vec<String> = part.prefix.iter().map(|t| (*t).to_string()).collect();
            path.extend([field.to_string(), index.to_string(), "image".to_string()]);
            images.push(ImageUse {
                image: image.clone(),
                container: container.to_string(),
                path,
            });
        }
    };
    if part.containers == Containers::All {
        for (i, c) in spec.init_containers.iter().flatten().enumerate() {
            push("initContainers", i, &c.name, c.image.as_ref());
        }
        for (i, c) in spec.containers.iter().enumerate() {
            push("containers", i, &c.name, c.image.as_ref());
        }
    }
    for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
        push("ephemeralContainers", i, &c.name, c.image.as_ref());
    }
    Workload {
        kind: kind.to_string(),
        name,
        namespace,
        service_account,
        break_glass,
        images,
    }
}

fn is_true(map: Option<&BTreeMap<String, String>>, key: &str) -> bool {
    map.and_then(|m| m.get(key))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(
        kind: (&str, &str),
        sub: Option<&str>,
        op: &str,
        object: serde_json::Value,
    ) -> Vec<u8> {
        let mut request = serde_json::json!({
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
            "resource": {"group": kind.0, "version": "v1", "resource": "things"},
            "name": "",
            "namespace": "team-a",
            "operation": op,
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": null,
            "dryRun": false,
        });
        if let Some(sub) = sub {
            request["subResource"] = sub.into();
        }
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": request,
        }))
        .unwrap()
    }

    fn pod_spec() -> serde_json::Value {
        serde_json::json!({
            "serviceAccountName": "builder",
            "initContainers": [{"name": "init", "image": "registry.example/init:1"}],
            "containers": [
                {"name": "app", "image": "registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"},
                {"name": "side", "image": "registry.example/side:2"}
            ],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}]
        })
    }

    fn paths(w: &Workload) -> Vec<String> {
        w.images
            .iter()
            .map(|u| format!("/{}={}", u.path.join("/"), u.image))
            .collect()
    }

    /// Found by `scripts/fuzz.sh` (target `admission`): `"containerPort": 9E901` in a field
    /// of the pod spec that is not a container list, a number beyond f64 that
    /// `serde_json::Value` refuses. The reader skips fields it does not use without converting
    /// them, so such a body still yields its images, at their paths (the same number inside a
    /// container or the metadata is an error); the API server never sends one, and nothing
    /// signet checks is in such a field.
    #[test]
    fn a_number_beyond_f64_in_an_unread_field_does_not_hide_the_images() {
        let mut spec = pod_spec();
        spec["c-ontainers"] = serde_json::json!([{"ports": [{"containerPort": 1}]}]);
        let object = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "team-a"}, "spec": spec});
        let body = String::from_utf8(review(("", "Pod"), None, "CREATE", object)).unwrap();
        let body = body.replace("\"containerPort\":1", "\"containerPort\":9E901");
        assert!(serde_json::from_str::<serde_json::Value>(&body).is_err());
        let w = parse(body.as_bytes()).unwrap().workload.unwrap();
        assert_eq!(
            paths(&w),
            [
                "/spec/initContainers/0/image=registry.example/init:1",
                "/spec/containers/0/image=registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "/spec/containers/1/image=registry.example/side:2",
                "/spec/ephemeralContainers/0/image=busybox",
            ]
        );
    }

    #[test]
    fn pod_images_in_spec_order_with_paths() {
        let body = review(
            ("", "Pod"),
            None,
            "CREATE",
            serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web", "namespace": "team-a"}, "spec": pod_spec()}),
        );
        let r = parse(&body).unwrap();
        assert_eq!(r.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(r.response.uid, r.uid);
        let w = r.workload.unwrap();
        assert_eq!(w.object(), "Pod/web");
        assert_eq!(w.namespace.as_deref(), Some("team-a"));
        assert_eq!(w.service_account, "builder");
        assert!(!w.break_glass);
        assert_eq!(
            paths(&w),
            [
                "/spec/initContainers/0/image=registry.example/init:1",
                "/spec/containers/0/image=registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "/spec/containers/1/image=registry.example/side:2",
                "/spec/ephemeralContainers/0/image=busybox",
            ]
        );
    }

    #[test]
    fn every_workload_kind_yields_its_template_images() {
        let template =
            serde_json::json!({"metadata": {"labels": {"app": "x"}}, "spec": pod_spec()});
        let cases = [
            (
                ("apps", "Deployment"),
                "apps/v1",
                serde_json::json!({"template": template}),
                "/spec/template/spec",
            ),
            (
                ("apps", "ReplicaSet"),
                "apps/v1",
                serde_json::json!({"template": template}),
                "/spec/template/spec",
            ),
            (
                ("apps", "StatefulSet"),
                "apps/v1",
                serde_json::json!({"template": template}),
                "/spec/template/spec",
            ),
            (
                ("apps", "DaemonSet"),
                "apps/v1",
                serde_json::json!({"template": template}),
                "/spec/template/spec",
            ),
            (
                ("batch", "Job"),
                "batch/v1",
                serde_json::json!({"template": template}),
                "/spec/template/spec",
            ),
            (
                ("", "ReplicationController"),
                "v1",
                serde_json::json!({"template": template}),
                "/spec/template/spec",
            ),
            (
                ("batch", "CronJob"),
                "batch/v1",
                serde_json::json!({"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}),
                "/spec/jobTemplate/spec/template/spec",
            ),
        ];
        for ((group, kind), api_version, spec, prefix) in cases {
            let body = review(
                (group, kind),
                None,
                "CREATE",
                serde_json::json!({"apiVersion": api_version, "kind": kind,
                    "metadata": {"name": "w"}, "spec": spec}),
            );
            let w = parse(&body)
                .unwrap()
                .workload
                .unwrap_or_else(|| panic!("{kind}: no workload"));
            assert_eq!(w.kind, kind);
            assert_eq!(w.service_account, "builder", "{kind}");
            assert_eq!(w.images.len(), 4, "{kind}");
            assert_eq!(
                paths(&w)[2],
                format!("{prefix}/containers/1/image=registry.example/side:2"),
                "{kind}"
            );
        }
    }

    #[test]
    fn ephemeral_container_subresource_checks_only_ephemeral_containers() {
        let body = review(
            ("", "Pod"),
            Some("ephemeralcontainers"),
            "UPDATE",
            serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web"}, "spec": pod_spec()}),
        );
        let w = parse(&body).unwrap().workload.unwrap();
        assert_eq!(paths(&w), ["/spec/ephemeralContainers/0/image=busybox"]);
    }

    #[test]
    fn updates_check_only_the_images_they_introduce() {
        let pod = |images: &[&str]| {
            let containers: Vec<_> = images
                .iter()
                .enumerate()
                .map(|(i, image)| serde_json::json!({"name": format!("c{i}"), "image": image}))
                .collect();
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                "spec": {"containers": containers}})
        };
        let mut body: serde_json::Value =
            serde_json::from_slice(&review(("", "Pod"), None, "UPDATE", pod(&["a:1", "b:1"])))
                .unwrap();
        body["request"]["oldObject"] = pod(&["a:1", "b:0"]);
        let w = parse(&serde_json::to_vec(&body).unwrap())
            .unwrap()
            .workload
            .unwrap();
        assert_eq!(paths(&w), ["/spec/containers/1/image=b:1"]);

        body["request"]["oldObject"] = pod(&["a:1", "b:1"]);
        let w = parse(&serde_json::to_vec(&body).unwrap())
            .unwrap()
            .workload
            .unwrap();
        assert!(w.images.is_empty());

        // The same old object on a CREATE (never sent, but) does not hide anything.
        body["request"]["operation"] = "CREATE".into();
        let w = parse(&serde_json::to_vec(&body).unwrap())
            .unwrap()
            .workload
            .unwrap();
        assert_eq!(w.images.len(), 2);
    }

    #[test]
    fn delete_status_and_podless_kinds_have_nothing_to_check() {
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web"}, "spec": pod_spec()});
        for (kind, sub, op) in [
            (("", "Pod"), None, "DELETE"),
            (("", "Pod"), None, "CONNECT"),
            (("", "Pod"), Some("status"), "UPDATE"),
            (("", "ConfigMap"), None, "CREATE"),
        ] {
            let r = parse(&review(kind, sub, op, pod.clone())).unwrap();
            assert!(r.workload.is_none(), "{kind:?} {sub:?} {op}");
            assert!(r.response.allowed);
        }
    }

    #[test]
    fn service_account_defaults_and_break_glass_is_read_from_labels_or_annotation() {
        let body = |meta: serde_json::Value| {
            review(
                ("", "Pod"),
                None,
                "CREATE",
                serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                    "spec": {"containers": [{"name": "a", "image": "x:1"}]}}),
            )
        };
        let w = parse(&body(serde_json::json!({"generateName": "web-"})))
            .unwrap()
            .workload
            .unwrap();
        assert_eq!(w.service_account, "default");
        assert_eq!(w.name, "web-");
        assert!(!w.break_glass);
        let w = parse(&body(
            serde_json::json!({"name": "a", "labels": {BREAK_GLASS_LABEL: "true"}}),
        ))
        .unwrap()
        .workload
        .unwrap();
        assert!(w.break_glass);
        let w = parse(&body(
            serde_json::json!({"name": "a", "annotations": {BREAK_GLASS_ANNOTATION: "True"}}),
        ))
        .unwrap()
        .workload
        .unwrap();
        assert!(w.break_glass);
        let w = parse(&body(
            serde_json::json!({"name": "a", "labels": {BREAK_GLASS_LABEL: "false"}}),
        ))
        .unwrap()
        .workload
        .unwrap();
        assert!(!w.break_glass);
    }

    #[test]
    fn unreadable_bodies_are_errors_and_bad_objects_keep_the_uid() {
        assert!(matches!(parse(b"{"), Err(ReviewError::Unreadable(_))));
        assert!(matches!(
            parse(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
            Err(ReviewError::NoRequest)
        ));
        let body = review(
            ("", "Pod"),
            None,
            "CREATE",
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": 7}}),
        );
        match parse(&body) {
            Err(ReviewError::Object { response, uid, .. }) => {
                assert_eq!(response.uid, uid);
                assert_eq!(uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
            }
            other => panic!("expected an object error, got {other:?}"),
        }
    }
}
