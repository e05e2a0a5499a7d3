//! `signet mirror`, `export` and `import`: the copy engine of `signet_registry::mirror` between
//! registries and OCI layouts, with progress on stderr.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use signet_core::digest::Digest;
use signet_registry::mirror::{self, Options, Plan, Summary};
use signet_registry::{
    Client, ImportImage, ImportTarget, Layout, LayoutKind, LayoutRef, Location, OpenMode,
    Repository,
};

use crate::cli::{CopyArgs, ExportArgs, ImportArgs, MirrorArgs, RegistryArgs};
use crate::commands::registry;
use crate::output;
use crate::progress::Reporter;

/// An image to copy, found.
struct Source {
    repo: Repository,
    digest: Digest,
    /// The repository name it is known by (`registry/path`), for naming it elsewhere.
    name: String,
    /// The tag it was named by, if any.
    tag: Option<String>,
}

fn options(copy: &CopyArgs) -> Options {
    Options {
        jobs: usize::from(copy.jobs),
        ..Options::default()
    }
}

/// Parses and resolves a source: a registry reference or a layout reference.
async fn open_source(client: &Client, location: &str) -> anyhow::Result<Source> {
    let opened = location
        .parse::<Location>()
        .with_context(|| format!("invalid image {location:?}"))?
        .open(|_| anyhow::Ok(client.clone()))?;
    let pinned = opened
        .repo
        .resolve(&opened.image)
        .await
        .with_context(|| format!("resolving {}", opened.image))?;
    Ok(Source {
        repo: opened.repo,
        digest: pinned.digest().clone(),
        name: opened.image.name(),
        tag: opened.image.tag().map(str::to_string),
    })
}

/// The registry hosts among `locations` (layouts have none), for binding flag credentials.
fn registries_of<'a>(locations: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    locations
        .into_iter()
        .filter_map(|l| match l.parse::<Location>() {
            Ok(Location::Registry(image)) => Some(image.registry().to_string()),
            // A layout reaches no registry; a bad reference is reported where it is opened.
            _ => None,
        })
        .collect()
}

/// A client whose flag credentials go to the one registry among `named`, or to the one the
/// user names when there are several.
fn client_for(args: &RegistryArgs, named: &[String]) -> anyhow::Result<Client> {
    let named: Vec<&str> = named.iter().map(String::as_str).collect();
    registry::client(args, &named)
}

pub async fn mirror(args: &RegistryArgs, cmd: &MirrorArgs) -> anyhow::Result<ExitCode> {
    let client = client_for(args, &registries_of([&cmd.source, &cmd.destination]))?;
    let options = options(&cmd.copy);
    let reporter = Reporter::new(cmd.copy.quiet);
    let source = open_source(&client, &cmd.source).await?;
    let destination = cmd
        .destination
        .parse::<Location>()
        .with_context(|| format!("invalid destination {:?}", cmd.destination))?;
    let (to, tag, archive, describe) = match destination {
        Location::Registry(image) => {
            if let Some(digest) = image.digest()
                && digest != &source.digest
            {
                bail!(
                    "{} names digest {digest}, but {} is {}",
                    cmd.destination,
                    cmd.source,
                    source.digest
                );
            }
            let tag = image.tag().map(str::to_string).or(source.tag.clone());
            (Repository::new(&client, &image), tag, None, image.name())
        }
        Location::Layout(LayoutRef {
            kind,
            path,
            tag,
            digest,
        }) => {
            if let Some(digest) = digest
                && digest != source.digest
            {
                bail!(
                    "{} names digest {digest}, but {} is {}",
                    cmd.destination,
                    cmd.source,
                    source.digest
                );
            }
            let layout = Layout::open(kind, &path, OpenMode::CreateIfMissing)?;
            let (scoped, tag) =
                layout.destination(tag.as_deref(), &source.name, source.tag.as_deref())?;
            // Shown as the reference written: `oci:DEST:registry/repo` (then `:tag`), or
            // `oci:DEST` for a plain tag.
            let describe = match scoped.scope() {
                Some(scope) => format!("{}:{scope}", layout.describe()),
                None => layout.describe(),
            };
            let archive = (kind == LayoutKind::Archive).then_some(layout);
            (Repository::layout(scoped), tag, archive, describe)
        }
    };
    let mut tags: Vec<String> = tag.into_iter().collect();
    for t in &cmd.tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let result = async {
        let plan = discover(&source.repo, &source.digest, &options, &reporter).await?;
        let summary = mirror::copy(&plan, &source.repo, &to, &tags, &options, &reporter)
            .await
            .with_context(|| format!("mirroring {} to {}", cmd.source, cmd.destination))?;
        if let Some(layout) = &archive {
            layout.save()?;
        }
        anyhow::Ok(summary)
    }
    .await;
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            reporter.abandon();
            return Err(e);
        }
    };
    reporter.finish(&summary);
    let name = match tags.first() {
        Some(tag) => format!("{describe}:{tag}"),
        None => describe,
    };
    output::line(&format!("{name}@{}", source.digest));
    Ok(ExitCode::SUCCESS)
}

/// Reads the graph to copy, telling the user what it found.
async fn discover(
    from: &Repository,
    digest: &Digest,
    options: &Options,
    reporter: &Reporter,
) -> anyhow::Result<Plan> {
    let plan = Plan::discover(from, digest, options)
        .await
        .with_context(|| format!("reading {}@{digest}", from.describe()))?;
    reporter.say(&format!(
        "{}@{digest}: {} objects ({}), {} referrers, {} legacy tags",
        from.describe(),
        plan.objects(),
        mirror::human_bytes(plan.bytes()),
        plan.referrer_count(),
        plan.legacy_tags().count(),
    ));
    Ok(plan)
}

/// Ends the progress display and prints the references written, or abandons it on error.
fn finish(
    reporter: &Reporter,
    result: anyhow::Result<(Summary, Vec<String>)>,
) -> anyhow::Result<ExitCode> {
    let (summary, names) = result.inspect_err(|_| reporter.abandon())?;
    reporter.finish(&summary);
    for name in names {
        output::line(&name);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn export(args: &RegistryArgs, cmd: &ExportArgs) -> anyhow::Result<ExitCode> {
    let client = client_for(args, &registries_of(&cmd.images))?;
    let options = options(&cmd.copy);
    let reporter = Reporter::new(cmd.copy.quiet);
    let result = export_all(&client, cmd, &options, &reporter).await;
    finish(&reporter, result)
}

async fn export_all(
    client: &Client,
    cmd: &ExportArgs,
    options: &Options,
    reporter: &Reporter,
) -> anyhow::Result<(Summary, Vec<String>)> {
    // Never merged into an existing archive (its other entries would ride along into the next
    // import): refused without --force, else replaced whole at the end.
    let output = &cmd.output;
    if !cmd.force && std::fs::symlink_metadata(output).is_ok() {
        anyhow::bail!(
            "{} already exists; refusing to add to it or replace it (use --force to replace it)",
            output.display()
        );
    }
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let scratch = signet_registry::ScratchDir::create(Some(dir), ".signet-export-")
        .with_context(|| format!("writing {}", output.display()))?;
    let partial = scratch.path().join("export.tar");
    let layout = Layout::open(LayoutKind::Archive, &partial, OpenMode::CreateIfMissing)?;
    let mut total = Summary::default();
    let mut names = Vec::new();
    for image in &cmd.images {
        let source = open_source(client, image).await?;
        let plan = discover(&source.repo, &source.digest, options, reporter).await?;
        let scoped = layout.scoped(Some(&source.name));
        let to = Repository::layout(scoped.clone());
        let tags: Vec<String> = source.tag.iter().cloned().collect();
        let summary = mirror::copy(&plan, &source.repo, &to, &tags, options, reporter)
            .await
            .with_context(|| format!("exporting {image}"))?;
        total.add(&summary);
        match &source.tag {
            Some(tag) => names.push(format!("{}:{tag}@{}", source.name, source.digest)),
            // A digest-pinned image is named by its reference with the digest and no tag
            // (`registry/repository@sha256:…`): import then pushes it by digest, and no tag
            // is made up for it.
            None => names.push(
                scoped
                    .name_by_digest(&source.digest)
                    .with_context(|| format!("naming {image} in {}", cmd.output.display()))?,
            ),
        }
    }
    layout
        .save()
        .with_context(|| format!("writing {}", cmd.output.display()))?;
    drop(layout);
    if cmd.force {
        // The replacement keeps the mode of the archive it replaces.
        if let Ok(old) = std::fs::metadata(output) {
            std::fs::set_permissions(&partial, old.permissions())
                .with_context(|| format!("writing {}", output.display()))?;
        }
        std::fs::rename(&partial, output)
    } else {
        // A hard link fails if the name appeared meanwhile: nothing is replaced unasked. On a
        // file system without hard links, the name is checked again just before the rename.
        match std::fs::hard_link(&partial, output) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                if std::fs::symlink_metadata(output).is_ok() {
                    Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
                } else {
                    std::fs::rename(&partial, output)
                }
            }
            other => other,
        }
    }
    .with_context(|| format!("writing {}", output.display()))?;
    Ok((total, names))
}

pub async fn import(args: &RegistryArgs, cmd: &ImportArgs) -> anyhow::Result<ExitCode> {
    // Only the registry of --to is contacted (the archive's own names are never reached), so
    // it is the one the credentials are for.
    let to: ImportTarget = cmd.to.parse()?;
    let client = client_for(args, std::slice::from_ref(&to.host))?;
    let options = options(&cmd.copy);
    let reporter = Reporter::new(cmd.copy.quiet);
    let result = import_all(&client, cmd, &to, &options, &reporter).await;
    finish(&reporter, result)
}

/// The registry host and path prefix of `--to`.
async fn import_all(
    client: &Client,
    cmd: &ImportArgs,
    to: &ImportTarget,
    options: &Options,
    reporter: &Reporter,
) -> anyhow::Result<(Summary, Vec<String>)> {
    let file = cmd.file.as_path();
    // Everything is checked before anything is written: every blob against its name (when
    // the archive is unpacked), every descriptor for a present blob of its size, every image
    // graph read whole.
    let layout = Layout::open(LayoutKind::Archive, file, OpenMode::MustExist)
        .with_context(|| format!("refusing {}", file.display()))?;
    layout
        .verify_all()
        .with_context(|| format!("refusing {}", file.display()))?;
    let images = layout.images()?;
    if images.is_empty() {
        bail!("{} holds no named image", file.display());
    }
    let mut jobs = Vec::new();
    // Destination tag → the archive entry that writes it: two entries may not write one tag
    // (`a.example/shop/app:v1` and `b.example/shop/app:v1` under one prefix), or the last
    // written would silently win.
    let mut writers: std::collections::BTreeMap<String, String> = Default::default();
    for (name, entry) in images {
        let ImportImage {
            from,
            digest,
            target,
            tag,
        } = layout.import_image(&name, &entry, to)?;
        if let Some(tag) = &tag {
            let destination = format!("{target}:{tag}");
            if let Some(first) = writers.insert(destination.clone(), name.clone()) {
                bail!(
                    "refusing {}: both {first} and {name} would be imported as {destination}; \
                     nothing was written",
                    file.display()
                );
            }
        }
        let plan = discover(&from, &digest, options, reporter).await?;
        plan.check_blobs(&from)
            .await
            .with_context(|| format!("refusing {}", file.display()))?;
        jobs.push((from, plan, target, tag));
    }
    let mut total = Summary::default();
    let mut names = Vec::new();
    for (from, plan, target, tag) in jobs {
        let to = Repository::new(client, &target);
        let tags: Vec<String> = tag.iter().cloned().collect();
        let written = match &tag {
            Some(tag) => format!("{target}:{tag}@{}", plan.root()),
            None => format!("{target}@{}", plan.root()),
        };
        let summary = mirror::copy(&plan, &from, &to, &tags, options, reporter)
            .await
            .with_context(|| format!("importing {written}"))?;
        total.add(&summary);
        names.push(written);
    }
    Ok((total, names))
}
