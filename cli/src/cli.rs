//! Command-line definitions. The contract is in DESIGN.md ("Interfaces that must stay stable").

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Binary Authorization for any OCI registry: sign images, store attestations next to them,
/// verify them against a policy.
#[derive(Parser, Debug)]
#[command(name = "signet", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// How to reach registries.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Registry access, for every command that talks to a registry.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Registry access")]
pub struct RegistryArgs {
    /// Username for one registry: the image's, or --registry-credentials-host (overrides
    /// ~/.docker/config.json there; never sent to any other registry). Not for `serve`.
    #[arg(long, global = true, env = "SIGNET_REGISTRY_USERNAME")]
    pub registry_username: Option<String>,
    /// Password or token for that registry (with --registry-username).
    #[arg(
        long,
        global = true,
        env = "SIGNET_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    pub registry_password: Option<String>,
    /// The one registry (host[:port], e.g. ghcr.io) that --registry-username/--registry-password
    /// are sent to; no other registry ever gets them. Default: the registry of the image named;
    /// required when the command names several registries (mirror, export, ...).
    #[arg(
        long,
        global = true,
        env = "SIGNET_REGISTRY_HOST",
        value_name = "HOST",
        requires = "registry_username"
    )]
    pub registry_credentials_host: Option<String>,
    /// Reach this registry (host[:port]) over plain HTTP; loopback registries always may be.
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// Trust this PEM CA certificate for registries, besides the system roots.
    #[arg(long = "registry-ca", global = true, value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
    /// Give up on a registry operation after this many seconds.
    #[arg(long, global = true, default_value_t = 60, value_name = "SECONDS")]
    pub registry_timeout: u64,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate an ECDSA P-256 key pair: PREFIX.key (encrypted, cosign format) and PREFIX.pub.
    ///
    /// The password comes from SIGNET_PASSWORD, else COSIGN_PASSWORD, else a prompt on the
    /// terminal (asked twice). An empty password is allowed, as in cosign.
    Keygen {
        /// Path prefix of the two files written.
        #[arg(long, default_value = "signet", value_name = "PREFIX")]
        output_prefix: PathBuf,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Sign an image: push a signature referring to its digest (a tag is resolved first).
    ///
    /// Prints the digest of what was pushed.
    Sign {
        /// The image: registry/repository[:tag][@digest], oci:DIR[:REF][@digest] or
        /// oci-archive:FILE[:REF][@digest].
        image: String,
        /// The encrypted private key (cosign format), or a key in a PKCS#11 token:
        /// `pkcs11:token=T;object=LABEL` (or `;id=%01`), optionally with
        /// `?module-path=…&pin-value=…` (default: SIGNET_PKCS11_MODULE, SIGNET_PKCS11_PIN).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// bundle: cosign v3 Sigstore bundle referrer; legacy: a layer of cosign's .sig tag.
        #[arg(long, value_enum, default_value_t = StorageFormat::Bundle)]
        format: StorageFormat,
        /// Annotation to sign with the image (repeatable).
        #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
        annotations: Vec<String>,
        /// For a multi-platform image (an index): sign the index and every platform manifest
        /// it lists, printing each digest signed.
        #[arg(long)]
        recursive: bool,
        /// An RFC 3161 timestamp authority (cosign's --timestamp-server-url): its signed
        /// timestamp over the signature goes into the bundle, where a policy that lists the
        /// authority under `timestampAuthorities` takes it as a trusted signing time (for
        /// maxAge, key windows and revoked keys). Bundles only.
        #[arg(long, value_name = "URL")]
        timestamp_server_url: Option<signet_registry::Url>,
        #[command(flatten)]
        certificate: CertificateArgs,
    },
    /// Attest an image: push a signed in-toto statement about its digest.
    ///
    /// With --format binauthz: a Binary Authorization attestation instead, the exact payload
    /// `gcloud container binauthz create-signature-payload` writes for the image, signed with
    /// --key (PKIX, ECDSA P-256) or --pgp-key (OpenPGP), stored as a referrer in the Grafeas
    /// occurrence form `signet binauthz export` writes out.
    ///
    /// Prints the digest of what was pushed.
    #[command(group(clap::ArgGroup::new("signer").required(true).args(["key", "pgp_key"])))]
    Attest {
        /// The image: registry/repository[:tag][@digest], oci:DIR[:REF][@digest] or
        /// oci-archive:FILE[:REF][@digest].
        image: String,
        /// The encrypted private key (cosign format), or a PKCS#11 URI
        /// (`pkcs11:token=T;object=LABEL`, see `sign`); with --format binauthz also an
        /// unencrypted PKCS#8 PEM ECDSA P-256 key (`openssl genpkey`).
        #[arg(long, value_name = "KEY")]
        key: Option<PathBuf>,
        /// An armoured OpenPGP secret key (with --format binauthz); its passphrase comes from
        /// SIGNET_PASSWORD, else COSIGN_PASSWORD, else a prompt (empty for an unprotected key).
        #[arg(long, value_name = "SECRET.asc")]
        pgp_key: Option<PathBuf>,
        /// The predicate: a JSON file (for --type custom, any text). Not for --format binauthz.
        #[arg(long, value_name = "FILE")]
        predicate: Option<PathBuf>,
        /// Predicate type: slsaprovenance, slsaprovenance02, slsaprovenance1, link, spdx,
        /// spdxjson, cyclonedx, vuln, openvex, custom, or any URI.
        #[arg(long = "type", value_name = "TYPE", default_value = "custom")]
        predicate_type: String,
        /// bundle: cosign v3 Sigstore bundle referrer; legacy: a layer of cosign's .att tag;
        /// binauthz: a Binary Authorization attestation (gcloud payload) referrer.
        #[arg(long, value_enum, default_value_t = AttestFormat::Bundle)]
        format: AttestFormat,
        /// With --format binauthz: the attestor's Container Analysis note
        /// (projects/P/notes/N), kept in the occurrence for `binauthz export`.
        #[arg(long, value_name = "NOTE")]
        note: Option<String>,
        /// With --format binauthz: the `publicKeyId` to name; default: the key's
        /// `ni:///sha-256;…` id (PKIX) or fingerprint (PGP), as Binary Authorization gives them.
        #[arg(long, value_name = "ID")]
        public_key_id: Option<String>,
        /// For a multi-platform image (an index): attest the index and every platform manifest
        /// it lists, printing each digest attested.
        #[arg(long)]
        recursive: bool,
        /// An RFC 3161 timestamp authority (cosign's --timestamp-server-url): its signed
        /// timestamp over the signature goes into the bundle, where a policy that lists the
        /// authority under `timestampAuthorities` takes it as a trusted signing time (for
        /// maxAge, key windows and revoked keys). Bundles only.
        #[arg(long, value_name = "URL")]
        timestamp_server_url: Option<signet_registry::Url>,
        #[command(flatten)]
        certificate: CertificateArgs,
    },
    /// Withdraw an attestation: push a signed withdrawal statement naming it, as a referrer of
    /// the same image. Once a key of the attestor that made the attestation signs it, that
    /// attestation no longer counts for that attestor, anywhere (CLI, daemon, mirrors).
    ///
    /// Prints the digest of what was pushed.
    Withdraw {
        /// The image: registry/repository[:tag][@digest], oci:DIR[:REF][@digest] or
        /// oci-archive:FILE[:REF][@digest].
        image: String,
        /// The attestation to withdraw: its referrer manifest digest (see `signet tree`).
        #[arg(long, value_name = "DIGEST")]
        attestation: String,
        /// The attestor's key (cosign format, or a PKCS#11 URI).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// Why, kept in the signed statement and shown in decisions.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Show the referrers graph of an image: signatures, attestations, and what refers to
    /// them, with cosign's legacy tags. A listed referrer that does not name what it is listed
    /// for as its subject is left out with a note; depth and size are bounded, and a tree that
    /// was cut says so.
    Tree {
        /// The image: registry/repository[:tag][@digest], oci:DIR[:REF][@digest] or
        /// oci-archive:FILE[:REF][@digest].
        image: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Verify an image against a key or a policy. Exit 0 allowed (or dry-run), 1 denied,
    /// 2 error.
    ///
    /// With --key: allowed when at least one signature or attestation on the digest verifies
    /// with one of the keys. With --policy: the policy's rule for the cluster, namespace and
    /// service account decides.
    #[command(group(clap::ArgGroup::new("trust").required(true).args(["key", "policy", "certificate_identity", "certificate_identity_regexp", "ca_roots"]).multiple(true)))]
    Verify {
        /// The image: registry/repository[:tag][@digest], oci:DIR[:REF][@digest] or
        /// oci-archive:FILE[:REF][@digest].
        image: String,
        /// A PEM public key (repeatable: any one verifying is enough).
        #[arg(long, value_name = "PUB")]
        key: Vec<PathBuf>,
        /// A policy file (see `signet policy init`).
        #[arg(long, value_name = "FILE", conflicts_with = "key")]
        policy: Option<PathBuf>,
        #[command(flatten)]
        certificate: CertificateIdentityArgs,
        /// The cluster name, for clusterAdmissionRules.
        #[arg(long, value_name = "NAME", requires = "policy")]
        cluster: Option<String>,
        /// The namespace, for kubernetesNamespaceAdmissionRules.
        #[arg(long, value_name = "NS", requires = "policy")]
        namespace: Option<String>,
        /// The service account (in --namespace), for kubernetesServiceAccountAdmissionRules.
        #[arg(long, value_name = "SA", requires = "namespace")]
        service_account: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// With --policy: the index (sha256:…) whose evidence may cover IMAGE, a platform
        /// manifest it lists, instead of the index IMAGE's tag names.
        #[arg(long, value_name = "DIGEST", requires = "policy")]
        index: Option<String>,
        /// With --policy: decide as of this time (RFC 3339, UTC: 2026-12-31T00:00:00Z)
        /// instead of now, for maxAge, key validFrom/validUntil and revokedKeys; to see
        /// until when an image keeps passing.
        #[arg(long, value_name = "TIME", requires = "policy", value_parser = parse_time)]
        at: Option<std::time::SystemTime>,
        /// Most bytes of signature and attestation blobs to fetch for this verification (each
        /// distinct blob counted once); evidence past it is rejected, not fetched.
        #[arg(long, value_name = "BYTES", default_value_t = signet_verify::DEFAULT_MAX_EVIDENCE_BYTES)]
        max_evidence_bytes: u64,
    },
    /// Decide again for what already runs: every container, init and ephemeral container
    /// image of every pod, from a pod list (`kubectl get pods -A -o json`) or listed from the
    /// API server (all namespaces, paged), with the namespace and service account of its pod,
    /// against the policy and the registry as they are now. Each image is reported compliant,
    /// violating (with the reasons) or error (registry unreachable, …). Each tag is resolved and
    /// each distinct digest verified once, however many pods run it. Pods that have finished
    /// (Succeeded, Failed) are not audited.
    ///
    /// Exit 0 all compliant, 1 any violating, 2 any error.
    Audit {
        /// The policy file.
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// Where the pods come from.
        #[command(flatten)]
        pods: PodsSource,
        /// Pods asked for per API request (`limit`; the rest is fetched with `continue`).
        #[arg(long, value_name = "N", default_value_t = signet_server::DEFAULT_PAGE_SIZE,
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        page_size: u32,
        /// The cluster name, for clusterAdmissionRules.
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Copy an image and everything that refers to it to another registry or layout.
    ///
    /// Copies the image (a multi-platform index with all its manifests, configs and layers),
    /// every referrer of each of its manifests, recursively (a signature on an SBOM
    /// attestation comes along), and cosign's legacy .sig/.att/.sbom tags. Bytes and digests
    /// are kept exactly, so signatures stay valid. What the destination has already is
    /// skipped, so re-running an interrupted mirror finishes it; blobs within one registry are
    /// mounted, not copied. Where the destination has no referrers API, each referrer gets a
    /// tag of its own and the fallback index `sha256-<hex>` is repaired once per subject. A
    /// legacy tag the destination has already keeps its layers: the source's are added in
    /// front (a warning says how many of the destination's were kept).
    ///
    /// SRC's tag is applied at DST unless DST names its own. Progress goes to stderr: bars on a
    /// terminal, a line per object otherwise, then a summary. Exit 0 done, 2 on error.
    Mirror(MirrorArgs),
    /// Write images and everything that refers to them into one OCI layout tarball.
    ///
    /// Each image is named in the archive by its full reference
    /// (org.opencontainers.image.ref.name, e.g. registry.example/team/app:v1), so that
    /// `skopeo inspect oci-archive:FILE:REF` finds it; an image given by digest alone is
    /// named by its reference with the digest (registry.example/team/app@sha256:…). Its
    /// legacy cosign tags are named `<repository>:sha256-<hex>.sig`, and its referrers are
    /// untagged entries. An existing FILE gets the images added. Carry it across an air gap
    /// and `signet import` it.
    Export(ExportArgs),
    /// Push an OCI layout tarball written by `signet export` to a registry.
    ///
    /// Every blob is checked against its digest and the whole graph for completeness before
    /// anything is written: a damaged or tampered tarball is refused whole, naming the bad
    /// blob. Each image goes to REGISTRY[/PREFIX]/<its repository path>:<its tag>, or by
    /// digest (no tag) when the archive names it by digest, with everything that refers to it.
    Import(ImportArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Binary Authorization attestations: bring Container Analysis occurrences into
    /// registries, and write them back out.
    #[command(subcommand)]
    Binauthz(BinauthzCommand),
    /// Run the verifier daemon: Kubernetes admission webhooks (validate, mutate), the JSON
    /// verify API, health and metrics, and a read-only decision explorer on loopback.
    Serve(crate::commands::serve::ServeArgs),
    /// Sign a local file: write a Sigstore bundle holding a DSSE-signed in-toto statement
    /// whose subject is the file's SHA-256 digest.
    SignBlob {
        /// The file to sign.
        file: PathBuf,
        /// The encrypted private key (cosign format), or a PKCS#11 URI
        /// (`pkcs11:token=T;object=LABEL`, see `sign`).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// Where to write the bundle; default: FILE.sigstore.json.
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
        #[command(flatten)]
        certificate: CertificateArgs,
    },
    /// Verify a local file against a bundle and a public key, or a certificate identity
    /// (keyless, offline against a trusted root; or your own CA). The bundle may hold a
    /// message signature or a DSSE in-toto statement whose subject is the file (sha256 or
    /// sha512, as npm and GitHub provenance are made). Exit 0 when it verifies, 1 when it does
    /// not, 2 on error.
    VerifyBlob {
        /// The file to verify.
        file: PathBuf,
        /// The PEM public key (or verify a certificate: --certificate-identity…, --ca-roots).
        #[arg(long, value_name = "PUB")]
        key: Option<PathBuf>,
        #[command(flatten)]
        certificate: CertificateIdentityArgs,
        /// The bundle; default: FILE.sigstore.json.
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print the PEM public key of a key signet signs with (a cosign key file, an
    /// unencrypted PKCS#8 key, or a PKCS#11 URI), for a policy or `verify --key`.
    PublicKey {
        /// The private key: a file, or `pkcs11:token=T;object=LABEL` (see `sign`).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// PKCS#11 modules (HSMs, smart cards, SoftHSM): list tokens and keys, with the
    /// `pkcs11:` URI to give `--key`.
    #[command(subcommand)]
    Pkcs11(Pkcs11Command),
    /// Sigstore trusted roots, for keyless verification (offline; no TUF, no network).
    #[command(subcommand)]
    TrustedRoot(TrustedRootCommand),
    /// Print a shell completion script: `source <(signet completion bash)`, or write it where
    /// your shell loads completions from.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write manual pages (signet.1, and signet-COMMAND.1 for each command) into a directory.
    Man {
        /// The directory (made if missing).
        #[arg(long, value_name = "DIR", default_value = "man")]
        output_dir: PathBuf,
    },
}

/// How copies run and report, shared by `mirror`, `export` and `import`.
#[derive(Args, Debug, Clone)]
pub struct CopyArgs {
    /// Blobs transferred at once.
    #[arg(long, default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// No progress and no summary; errors and warnings still go to stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `signet mirror`.
#[derive(Args, Debug)]
pub struct MirrorArgs {
    /// The image: registry/repository[:tag][@digest], oci:DIR[:REF][@digest] or
    /// oci-archive:FILE[:REF][@digest].
    pub source: String,
    /// Where to: registry/repository[:tag], oci:DIR[:REF] or oci-archive:FILE[:REF].
    pub destination: String,
    /// Also tag the image with this at the destination (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Parallelism and reporting.
    #[command(flatten)]
    pub copy: CopyArgs,
}

/// `signet export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The images: registry/repository:tag[@digest], registry/repository@digest (or
    /// oci:/oci-archive: references).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// The tarball to write. It is written whole beside its place and renamed in at the end;
    /// an existing file is never merged into.
    #[arg(long, short, value_name = "FILE.tar")]
    pub output: PathBuf,
    /// Replace the tarball if it exists (otherwise an existing file is refused).
    #[arg(long)]
    pub force: bool,
    /// Parallelism and reporting.
    #[command(flatten)]
    pub copy: CopyArgs,
}

/// `signet import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The tarball written by `signet export`.
    pub file: PathBuf,
    /// The registry, optionally with a path prefix: REGISTRY[/PREFIX].
    #[arg(long, value_name = "REGISTRY[/PREFIX]")]
    pub to: String,
    /// Parallelism and reporting.
    #[command(flatten)]
    pub copy: CopyArgs,
}

/// `signet policy …`.
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Check a policy file: every error with its file, line and column; a summary when valid.
    /// Exit 0 valid, 2 invalid.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Write a commented starting policy (to stdout, or to --output).
    Init {
        /// Where to write it; refuses to overwrite an existing file.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TrustedRootCommand {
    /// Print a trusted root's certificate authorities, transparency logs, CT logs and
    /// timestamp authorities with their validity windows: FILE, or the public-good root
    /// signet ships (used when no --trusted-root is given).
    Show {
        /// A trusted_root.json (application/vnd.dev.sigstore.trustedroot+json;version=0.1).
        file: Option<PathBuf>,
    },
}

/// `signet pkcs11 …`.
#[derive(Subcommand, Debug)]
pub enum Pkcs11Command {
    /// List the slots that hold a token: slot number, label, serial, manufacturer, model.
    Tokens {
        /// The PKCS#11 module (shared library).
        #[arg(long, value_name = "PATH", env = "SIGNET_PKCS11_MODULE")]
        module: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// List the keys in a token: label, id (hex), type, and for private keys whether they are
    /// sensitive and extractable, and the `pkcs11:` URI to sign with.
    ///
    /// Private keys are listed after logging in with the user PIN (SIGNET_PKCS11_PIN, else a
    /// prompt on a terminal); without one, only public keys.
    Keys {
        /// The token's label.
        #[arg(long, value_name = "LABEL")]
        token: String,
        /// The PKCS#11 module (shared library).
        #[arg(long, value_name = "PATH", env = "SIGNET_PKCS11_MODULE")]
        module: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// `signet binauthz …`.
#[derive(Subcommand, Debug)]
pub enum BinauthzCommand {
    /// Store Container Analysis attestation occurrences next to their images.
    ///
    /// Reads what `gcloud container binauthz attestations list --format=json` prints (or a
    /// Grafeas ListOccurrencesResponse, or one occurrence; v1 and v1beta1 shapes) and stores
    /// each attestation in the registry its resourceUri names, as a referrer of that digest,
    /// keeping payload, signatures, key ids, note and occurrence name exactly. A second run
    /// adds nothing. Refused, naming the occurrence: a payload about another digest than its
    /// resourceUri, bad base64 or JSON, an image the registry does not have. Signers are not
    /// judged (that is the policy's job) unless --policy is given.
    ///
    /// Exit 0 when everything was stored or already there, 1 when some occurrence was
    /// refused, 2 on error.
    Import {
        /// Occurrence files (JSON).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Rewrite an image name prefix before storing (repeatable), for images that moved:
        /// gcr.io/old-project=registry.corp.example/mirror.
        #[arg(long = "registry-map", value_name = "FROM=TO")]
        registry_map: Vec<String>,
        /// Also check each attestation against this policy's attestors and say which it
        /// would count for (nothing is refused for it).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Write an image's Binary Authorization attestations as Grafeas occurrences, in the
    /// JSON list `binauthz import` reads and Container Analysis accepts.
    Export {
        /// The image: registry/repository[:tag][@digest], oci:DIR[:REF][@digest] or
        /// oci-archive:FILE[:REF][@digest].
        image: String,
        /// Only occurrences of this note (projects/P/notes/N).
        #[arg(long, value_name = "NOTE")]
        attestor: Option<String>,
        /// Where to write the JSON list (`-`: stdout).
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// How `signet attest` stores what it signs.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttestFormat {
    /// A Sigstore bundle v0.3 as an OCI 1.1 referrer (cosign v3's layout).
    Bundle,
    /// cosign's legacy `sha256-<hex>.att` tag.
    Legacy,
    /// A Binary Authorization attestation (gcloud payload, PKIX or PGP signature) referrer.
    Binauthz,
}

/// Where signatures and attestations are written.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageFormat {
    /// A Sigstore bundle v0.3 as an OCI 1.1 referrer (cosign v3's layout).
    Bundle,
    /// cosign's legacy `sha256-<hex>.sig` / `.att` tags.
    Legacy,
}

/// Where `audit` reads the pods from: exactly one of these.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct PodsSource {
    /// A pod list: what `kubectl get pods -A -o json` prints.
    #[arg(long, value_name = "FILE")]
    pub pods: Option<PathBuf>,
    /// List the pods from the API server of this kubeconfig's current context (its
    /// credentials; needs `list` on pods in all namespaces).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// List the pods from the API server of the cluster signet runs in, with its service
    /// account's token (KUBERNETES_SERVICE_HOST, /var/run/secrets/kubernetes.io/serviceaccount).
    #[arg(long)]
    pub in_cluster: bool,
}

impl PodsSource {
    /// The source the flags name (clap makes sure exactly one is given).
    pub fn source(&self) -> signet_server::PodSource {
        match (&self.pods, &self.kubeconfig) {
            (Some(file), _) => signet_server::PodSource::File(file.clone()),
            (None, Some(kubeconfig)) => signet_server::PodSource::Kubeconfig(kubeconfig.clone()),
            (None, None) => signet_server::PodSource::InCluster,
        }
    }
}

/// How results are printed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// For people.
    Text,
    /// One JSON object, for scripts.
    Json,
}

impl From<StorageFormat> for signet_registry::publish::StorageFormat {
    fn from(format: StorageFormat) -> Self {
        match format {
            StorageFormat::Bundle => signet_registry::publish::StorageFormat::Bundle,
            StorageFormat::Legacy => signet_registry::publish::StorageFormat::Legacy,
        }
    }
}

/// An RFC 3339 time in UTC, for `--at`.
fn parse_time(text: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339(text)
        .map_err(|e| format!("{e}; write an RFC 3339 time in UTC such as 2026-12-31T00:00:00Z"))
}

/// Signing with a certificate from your own CA (cosign's `--certificate` and
/// `--certificate-chain`), for verifiers that trust the CA (`--ca-roots`, a policy's
/// `certificates`) rather than the key.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CertificateArgs {
    /// A PEM certificate for the signing key: it goes into the bundle
    /// (`verificationMaterial.certificate`) or, with --format legacy, into the layer's
    /// `dev.sigstore.cosign/certificate` annotation. Refused when it certifies another key.
    #[arg(long, value_name = "CERT.pem")]
    pub certificate: Option<PathBuf>,
    /// The PEM certificates above it (intermediates, then optionally the root), for the
    /// legacy layer's `dev.sigstore.cosign/chain` annotation; a v0.3 bundle holds only the
    /// leaf, so give verifiers the intermediates (`--ca-intermediates`).
    #[arg(long, value_name = "CHAIN.pem", requires = "certificate")]
    pub certificate_chain: Option<PathBuf>,
}

/// Verifying signatures made with a certificate, with cosign's names: keyless (a Fulcio
/// certificate, checked offline against a Sigstore trusted root: the public-good one signet
/// ships unless --trusted-root is given) or from your own CA (--ca-roots).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CertificateIdentityArgs {
    /// The identity the certificate must be issued to (its SAN: a workflow URI, an email).
    #[arg(long, value_name = "ID")]
    pub certificate_identity: Option<String>,
    /// The identity as an anchored regular expression (`^…$`).
    #[arg(long, value_name = "RE", conflicts_with = "certificate_identity")]
    pub certificate_identity_regexp: Option<String>,
    /// The OIDC issuer that must have vouched for the identity (Fulcio's extension), e.g.
    /// https://token.actions.githubusercontent.com. Required for keyless.
    #[arg(long, value_name = "ISSUER")]
    pub certificate_oidc_issuer: Option<String>,
    /// The OIDC issuer as an anchored regular expression.
    #[arg(long, value_name = "RE", conflicts_with = "certificate_oidc_issuer")]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// The GitHub event that triggered the signing workflow, exactly (`push`, `release`, …):
    /// Fulcio's githubWorkflowTrigger claim (OID 1.3.6.1.4.1.57264.1.2).
    #[arg(long, value_name = "EVENT")]
    pub certificate_github_workflow_trigger: Option<String>,
    /// The commit the signing workflow ran at, exactly (the full hex SHA): Fulcio's
    /// githubWorkflowSha claim (1.3.6.1.4.1.57264.1.3).
    #[arg(long, value_name = "SHA")]
    pub certificate_github_workflow_sha: Option<String>,
    /// The name of the signing workflow (its `name:`), exactly: Fulcio's githubWorkflowName
    /// claim (1.3.6.1.4.1.57264.1.4).
    #[arg(long, value_name = "NAME")]
    pub certificate_github_workflow_name: Option<String>,
    /// The repository the signing workflow ran in (`owner/repo`), exactly: Fulcio's
    /// githubWorkflowRepository claim (1.3.6.1.4.1.57264.1.5).
    #[arg(long, value_name = "OWNER/REPO")]
    pub certificate_github_workflow_repository: Option<String>,
    /// The git ref the signing workflow ran for (`refs/tags/v1.2.3`), exactly: Fulcio's
    /// githubWorkflowRef claim (1.3.6.1.4.1.57264.1.6).
    #[arg(long, value_name = "REF")]
    pub certificate_github_workflow_ref: Option<String>,
    /// A Fulcio claim the certificate must carry with exactly this value: NAME is a claim
    /// name (sourceRepositoryRef, buildTrigger, runnerEnvironment, …) or a dotted OID under
    /// 1.3.6.1.4.1.57264.1. Repeatable; every one given must hold. For regular expressions,
    /// use a policy's `extensions`.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_claim)]
    pub certificate_extension: Vec<(String, String)>,
    /// A Sigstore trusted root (trusted_root.json) instead of the public-good one signet ships.
    #[arg(long, value_name = "FILE", conflicts_with = "ca_roots")]
    pub trusted_root: Option<PathBuf>,
    /// Your own CA: PEM root certificates the signing certificate must chain to (no
    /// transparency log or SCT needed; checked at the time of verification).
    #[arg(long, value_name = "FILE")]
    pub ca_roots: Option<PathBuf>,
    /// PEM intermediate certificates between --ca-roots and the signing certificate.
    #[arg(long, value_name = "FILE", requires = "ca_roots")]
    pub ca_intermediates: Option<PathBuf>,
}

impl CertificateIdentityArgs {
    /// Whether any certificate option was given.
    pub fn given(&self) -> bool {
        self.certificate_identity.is_some()
            || self.certificate_identity_regexp.is_some()
            || self.certificate_oidc_issuer.is_some()
            || self.certificate_oidc_issuer_regexp.is_some()
            || self.trusted_root.is_some()
            || self.ca_roots.is_some()
            || !self.claims().is_empty()
    }

    /// The Fulcio claims required, as (claim name, exact value): the GitHub workflow flags,
    /// then each --certificate-extension.
    pub fn claims(&self) -> Vec<(String, String)> {
        let github = [
            (
                "githubWorkflowTrigger",
                &self.certificate_github_workflow_trigger,
            ),
            ("githubWorkflowSha", &self.certificate_github_workflow_sha),
            ("githubWorkflowName", &self.certificate_github_workflow_name),
            (
                "githubWorkflowRepository",
                &self.certificate_github_workflow_repository,
            ),
            ("githubWorkflowRef", &self.certificate_github_workflow_ref),
        ];
        github
            .into_iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| (name.to_string(), v.clone())))
            .chain(self.certificate_extension.iter().cloned())
            .collect()
    }
}

/// `NAME=VALUE` for --certificate-extension: NAME a Fulcio claim (checked here, so a typo is
/// a usage error rather than a certificate that never matches), VALUE not empty.
fn parse_claim(text: &str) -> Result<(String, String), String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err("write NAME=VALUE, e.g. sourceRepositoryRef=refs/tags/v1.2.3".into());
    };
    let claim = signet_core::keyless::claim_key(name).map_err(|e| e.to_string())?;
    if value.is_empty() {
        return Err(format!("the value of {name} is empty"));
    }
    Ok((claim, value.to_string()))
}
