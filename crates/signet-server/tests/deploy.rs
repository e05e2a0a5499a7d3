//! The manifests of `deploy/` read into the typed Kubernetes structs of `k8s-openapi`.
//!
//! `k8s-openapi` ignores fields it does not know, so a misspelt field would pass a plain parse:
//! every document is therefore parsed, written back, and compared with what was read. Anything
//! dropped or changed on the way is a schema mistake. Then the parts that must agree with the
//! daemon are checked: routes, ports, probes, timeouts, excluded namespaces, the policy itself.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a broken manifest should fail the test loudly"
)]

use std::path::{Path, PathBuf};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn to_json(yaml: &Yaml<'_>) -> Value {
    match yaml {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        Yaml::Value(Scalar::Integer(i)) => Value::from(*i),
        Yaml::Value(Scalar::FloatingPoint(f)) => Value::from(f.into_inner()),
        Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
        Yaml::Representation(s, _, _) => Value::String(s.to_string()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        other => panic!("unsupported YAML node {other:?}"),
    }
}

/// The documents of `file`, as JSON.
fn documents(file: &str) -> Vec<Value> {
    let path = deploy_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Yaml::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .iter()
        .map(to_json)
        .collect()
}

/// The first place where `a` and `b` differ, as a JSON pointer.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => {
                        if let Some(d) = first_difference(p, q, &format!("{at}/{key}")) {
                            return Some(d);
                        }
                    }
                    _ => return Some(format!("{at}/{key}")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{at}/{i}"))),
        _ if a == b => None,
        _ => Some(at.to_string()),
    }
}

/// `doc` as `K`, failing when the typed struct does not keep every field as written.
fn typed<K: DeserializeOwned + Serialize>(file: &str, doc: &Value) -> K {
    let object: K =
        serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{file}: {e}\n{doc:#}"));
    let back = serde_json::to_value(&object).unwrap();
    if let Some(path) = first_difference(doc, &back, "") {
        panic!(
            "{file}: {path} is not what Kubernetes reads (misspelt or misplaced field?)\n\
             written: {}\nread back: {}",
            doc.pointer(&path)
                .map_or("(absent)".into(), Value::to_string),
            back.pointer(&path)
                .map_or("(absent)".into(), Value::to_string),
        );
    }
    object
}

fn one<K: DeserializeOwned + Serialize>(file: &str) -> K {
    let docs = documents(file);
    assert_eq!(docs.len(), 1, "{file}: one document expected");
    typed(file, &docs[0])
}

#[test]
fn every_manifest_is_a_valid_kubernetes_object() {
    let namespace: Namespace = one("namespace.yaml");
    assert_eq!(namespace.metadata.name.as_deref(), Some("signet"));
    let _: ServiceAccount = one("serviceaccount.yaml");
    let rbac = documents("rbac.yaml");
    assert_eq!(rbac.len(), 2);
    let _: ClusterRole = typed("rbac.yaml", &rbac[0]);
    let _: ClusterRoleBinding = typed("rbac.yaml", &rbac[1]);
    let _: ConfigMap = one("policy-configmap.yaml");
    let _: Deployment = one("deployment.yaml");
    let _: Service = one("service.yaml");
    let _: PodDisruptionBudget = one("poddisruptionbudget.yaml");
    let docs = documents("webhooks.yaml");
    assert_eq!(docs.len(), 2);
    let _: MutatingWebhookConfiguration = typed("webhooks.yaml", &docs[0]);
    let _: ValidatingWebhookConfiguration = typed("webhooks.yaml", &docs[1]);

    // The kustomization lists every manifest.
    let kustomization = &documents("kustomization.yaml")[0];
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for file in std::fs::read_dir(deploy_dir()).unwrap() {
        let name = file.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            assert!(
                listed.contains(&name.as_str()),
                "{name} not in kustomization"
            );
        }
    }
}

#[test]
fn deployment_runs_two_probed_replicas_of_signet_serve_over_tls() {
    let deployment: Deployment = one("deployment.yaml");
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap();
    assert_eq!(args[0], "serve");
    for flag in [
        "--policy=/etc/signet/policy/policy.yaml",
        "--tls-cert=/etc/signet/tls/tls.crt",
        "--tls-key=/etc/signet/tls/tls.key",
        "--listen=0.0.0.0:8443",
    ] {
        assert!(args.iter().any(|a| a == flag), "{flag} missing: {args:?}");
    }
    let readiness = container.readiness_probe.clone().unwrap().http_get.unwrap();
    assert_eq!(readiness.path.as_deref(), Some("/readyz"));
    assert_eq!(readiness.scheme.as_deref(), Some("HTTPS"));
    let liveness = container.liveness_probe.clone().unwrap().http_get.unwrap();
    assert_eq!(liveness.path.as_deref(), Some("/healthz"));
    let port = &container.ports.clone().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.container_port),
        (Some("https"), 8443)
    );

    // Mounts match the flags, and the volumes name the ConfigMap and Secret.
    let mounts = container.volume_mounts.clone().unwrap();
    let mount = |name: &str| {
        mounts
            .iter()
            .find(|m| m.name == name)
            .unwrap()
            .mount_path
            .clone()
    };
    assert_eq!(mount("policy"), "/etc/signet/policy");
    assert_eq!(mount("tls"), "/etc/signet/tls");
    let volumes = pod.volumes.unwrap();
    let config_map: ConfigMap = one("policy-configmap.yaml");
    assert_eq!(
        volumes[0].config_map.as_ref().unwrap().name,
        config_map.metadata.name.unwrap()
    );
    assert_eq!(
        volumes[1].secret.as_ref().unwrap().secret_name.as_deref(),
        Some("signet-tls")
    );

    // Registry credentials: the optional dockerconfigjson Secret, mounted where DOCKER_CONFIG
    // points, and never flag or environment credentials, which `serve` refuses (issue 12).
    let env = container.env.clone().unwrap();
    let docker_config = env
        .iter()
        .find(|e| e.name == "DOCKER_CONFIG")
        .and_then(|e| e.value.clone())
        .unwrap();
    assert_eq!(mount("registry-credentials"), docker_config);
    let credentials = volumes
        .iter()
        .find(|v| v.name == "registry-credentials")
        .and_then(|v| v.secret.clone())
        .unwrap();
    assert_eq!(
        credentials.secret_name.as_deref(),
        Some("signet-registry-credentials")
    );
    assert_eq!(credentials.optional, Some(true));
    let items = credentials.items.unwrap();
    assert_eq!(
        (items[0].key.as_str(), items[0].path.as_str()),
        (".dockerconfigjson", "config.json")
    );
    assert!(
        env.iter().all(|e| !e.name.starts_with("SIGNET_REGISTRY_"))
            && args.iter().all(|a| !a.starts_with("--registry-")),
        "serve refuses flag credentials: {env:?} {args:?}"
    );

    // The Service and the disruption budget select these pods.
    let labels = spec.template.metadata.unwrap().labels.unwrap();
    let selects = |selector: &LabelSelector| {
        selector
            .match_labels
            .as_ref()
            .unwrap()
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    };
    let service: Service = one("service.yaml");
    let service = service.spec.unwrap();
    assert!(
        service
            .selector
            .unwrap()
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    );
    let service_port = &service.ports.unwrap()[0];
    assert_eq!(service_port.port, 443);
    assert_eq!(
        service_port.target_port,
        Some(IntOrString::String("https".into()))
    );
    let pdb: PodDisruptionBudget = one("poddisruptionbudget.yaml");
    let pdb = pdb.spec.unwrap();
    assert!(selects(pdb.selector.as_ref().unwrap()));
    assert_eq!(pdb.min_available, Some(IntOrString::Int(1)));
}

/// Issue 15: continuous validation lists pods in every namespace, so the daemon's service
/// account may `list` pods, cluster-wide, and nothing else; and the token it lists with is
/// mounted where the in-cluster client looks for it.
#[test]
fn continuous_validation_may_list_pods_and_nothing_more() {
    let rbac = documents("rbac.yaml");
    let role: ClusterRole = typed("rbac.yaml", &rbac[0]);
    let binding: ClusterRoleBinding = typed("rbac.yaml", &rbac[1]);
    assert_eq!(
        role.rules.unwrap(),
        [PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".into()]),
            verbs: vec!["list".into()],
            ..PolicyRule::default()
        }]
    );
    assert!(role.aggregation_rule.is_none());
    assert_eq!(
        (
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("ClusterRole", role.metadata.name.as_deref().unwrap())
    );

    let account: ServiceAccount = one("serviceaccount.yaml");
    let deployment: Deployment = one("deployment.yaml");
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let subjects = binding.subjects.unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(&subjects[0].name), pod.service_account_name.as_ref());
    assert_eq!(subjects[0].name, account.metadata.name.unwrap());
    assert_eq!(subjects[0].namespace, account.metadata.namespace);

    let container = &pod.containers[0];
    let args = container.args.clone().unwrap();
    assert!(
        args.iter()
            .any(|a| a.starts_with("--continuous-validation=")),
        "{args:?}"
    );
    // No token by default; the projected one, mounted at the in-cluster path.
    assert_eq!(pod.automount_service_account_token, Some(false));
    let mount = container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount")
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == mount.name)
        .unwrap();
    let sources = volume.projected.unwrap().sources.unwrap();
    let token = sources
        .iter()
        .find_map(|s| s.service_account_token.clone())
        .unwrap();
    assert_eq!(token.path, "token");
    assert!(token.expiration_seconds.unwrap() <= 3600);
    assert!(sources.iter().any(|s| s.config_map.is_some()));
    assert!(sources.iter().any(|s| s.downward_api.is_some()));
}

#[test]
fn the_policy_in_the_configmap_loads() {
    let config_map: ConfigMap = one("policy-configmap.yaml");
    let data = config_map.data.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in &data {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    if let Err(errors) = signet_policy::load(&dir.path().join("policy.yaml")) {
        panic!("the ConfigMap's policy does not load:\n{errors}");
    }
}

fn check_webhook(
    name: &str,
    client: &WebhookClientConfig,
    path: &str,
    rules: &[RuleWithOperations],
    failure_policy: Option<&str>,
    timeout: Option<i32>,
    namespaces: Option<&LabelSelector>,
) {
    let service = client.service.as_ref().unwrap();
    assert_eq!(
        (service.name.as_str(), service.namespace.as_str()),
        ("signet", "signet"),
        "{name}"
    );
    assert_eq!(service.path.as_deref(), Some(path), "{name}");
    assert_eq!(service.port, Some(443), "{name}");
    assert_eq!(failure_policy, Some("Fail"), "{name}");
    assert_eq!(timeout, Some(10), "{name}");
    let excluded = &namespaces.unwrap().match_expressions.as_ref().unwrap()[0];
    assert_eq!(excluded.key, "kubernetes.io/metadata.name");
    assert_eq!(excluded.operator, "NotIn");
    let values = excluded.values.clone().unwrap();
    assert!(values.contains(&"kube-system".to_string()) && values.contains(&"signet".to_string()));

    let mut resources: Vec<String> = rules
        .iter()
        .flat_map(|r| {
            let groups = r.api_groups.clone().unwrap();
            r.resources
                .clone()
                .unwrap()
                .into_iter()
                .map(move |res| format!("{}/{res}", groups[0]))
        })
        .collect();
    resources.sort();
    assert_eq!(
        resources,
        [
            "/pods",
            "/pods/ephemeralcontainers",
            "/replicationcontrollers",
            "apps/daemonsets",
            "apps/deployments",
            "apps/replicasets",
            "apps/statefulsets",
            "batch/cronjobs",
            "batch/jobs",
        ],
        "{name}"
    );
    for rule in rules {
        assert_eq!(
            rule.operations.clone().unwrap(),
            ["CREATE", "UPDATE"],
            "{name}"
        );
    }
}

#[test]
fn webhooks_fail_closed_call_the_right_routes_and_spare_system_namespaces() {
    let docs = documents("webhooks.yaml");
    let mutating: MutatingWebhookConfiguration = typed("webhooks.yaml", &docs[0]);
    let validating: ValidatingWebhookConfiguration = typed("webhooks.yaml", &docs[1]);
    let m = &mutating.webhooks.unwrap()[0];
    check_webhook(
        &m.name,
        &m.client_config,
        "/admission/mutate",
        m.rules.as_deref().unwrap(),
        m.failure_policy.as_deref(),
        m.timeout_seconds,
        m.namespace_selector.as_ref(),
    );
    assert_eq!(m.side_effects, "None");
    assert_eq!(m.admission_review_versions, ["v1"]);
    let v = &validating.webhooks.unwrap()[0];
    check_webhook(
        &v.name,
        &v.client_config,
        "/admission/validate",
        v.rules.as_deref().unwrap(),
        v.failure_policy.as_deref(),
        v.timeout_seconds,
        v.namespace_selector.as_ref(),
    );
    assert_eq!(v.side_effects, "None");
    assert_eq!(v.admission_review_versions, ["v1"]);
}

/// The policy of the ConfigMap, loaded from a temporary directory with its keys.
fn configmap_policy() -> signet_policy::Policy {
    let config_map: ConfigMap = one("policy-configmap.yaml");
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in config_map.data.unwrap() {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    signet_policy::load(&dir.path().join("policy.yaml")).unwrap()
}

/// Issue 17: signet's own image runs by digest, the digest `scripts/build-image.sh
/// --set-deploy-digest` writes, and is let in by the key that signed it (attestor
/// `signet-release`, in the `signet` namespace's rule), never by a name pattern: anyone who can
/// push to a registry can choose a name. Its namespace has a webhook of its own that checks it
/// and fails open, so that signet can always start again.
#[test]
fn signets_own_image_is_pinned_by_digest_and_not_exempt_by_name() {
    let deployment: Deployment = one("deployment.yaml");
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let image = pod.containers[0].image.clone().unwrap();
    let (name, digest) = image
        .split_once('@')
        .unwrap_or_else(|| panic!("{image} is not pinned by digest"));
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert!(
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{image}"
    );

    // kustomize's `images:` pins the same name to the same digest, with no tag to fall back to.
    let kustomization = &documents("kustomization.yaml")[0];
    let pins = kustomization["images"].as_array().unwrap();
    let pin = pins
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no `images:` entry for {name}: {pins:?}"));
    assert_eq!(
        pin["digest"], digest,
        "kustomization.yaml and deployment.yaml disagree"
    );
    assert_eq!(pin["newName"], name);
    assert!(pin.get("newTag").is_none(), "{pin}");

    // The policy: trusted registry, no exempt pattern, and the signet namespace's rule
    // requires signet-release, enforced (not a dry run).
    let policy = configmap_policy();
    let signet = signet_policy::evaluate::AdmissionContext {
        cluster: Some("prod".into()),
        namespace: Some("signet".into()),
        service_account: pod.service_account_name.clone(),
    };
    for reference in [image.as_str(), name, &format!("{name}:0.1.0")] {
        let reference: signet_core::reference::ImageRef = reference.parse().unwrap();
        assert!(
            !policy.is_exempt(&reference),
            "{reference} is exempt by name"
        );
        match policy.needs(&reference, &signet) {
            signet_policy::evaluate::Need::Attestors(attestors) => {
                let names: Vec<&str> = attestors.iter().map(|a| a.name.0.as_str()).collect();
                assert_eq!(names, ["signet-release"], "{reference}");
            }
            signet_policy::evaluate::Need::Nothing => {
                panic!("{reference} needs no evidence in the signet namespace")
            }
        }
    }
    let rule = policy.rule_for(&signet);
    assert_eq!((rule.label, rule.key), ("namespace", Some("signet")));
    assert_eq!(
        rule.rule.enforcement,
        signet_policy::model::EnforcementMode::Enforced
    );
    let release = policy
        .attestors
        .values()
        .find(|a| a.name.0 == "signet-release")
        .unwrap();
    assert_eq!(release.keys.len(), 1);

    // The webhooks: the fail-closed ones leave the namespace out; its own one checks it
    // through the same route and fails open.
    let docs = documents("webhooks.yaml");
    let validating: ValidatingWebhookConfiguration = typed("webhooks.yaml", &docs[1]);
    let webhooks = validating.webhooks.unwrap();
    let own = webhooks
        .iter()
        .find(|w| w.name == "verify-own.signet.dev")
        .unwrap();
    let selector = &own
        .namespace_selector
        .as_ref()
        .unwrap()
        .match_expressions
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        (
            selector.key.as_str(),
            selector.operator.as_str(),
            selector.values.clone().unwrap()
        ),
        ("kubernetes.io/metadata.name", "In", vec!["signet".into()])
    );
    let service = own.client_config.service.as_ref().unwrap();
    assert_eq!(service.path.as_deref(), Some("/admission/validate"));
    assert_eq!(own.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(own.rules, webhooks[0].rules);
}
