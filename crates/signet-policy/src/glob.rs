//! Image name patterns, as in `registryAllowlist` and `admissionWhitelistPatterns`.
//!
//! A pattern matches a normalised image name, `registry/repository` without tag or digest, as
//! [`ImageRef::name`](signet_core::reference::ImageRef::name) returns it
//! (`docker.io/library/alpine`, `127.0.0.1:5000/team/app`):
//!
//! - `*` matches any run of characters except `/` (within one path component);
//! - `**` matches anything, `/` included; `a/**` matches everything below `a` (not `a` itself),
//!   `a/**/b` matches `a/b`, `a/x/b`, `a/x/y/b`; `**` alone matches every name;
//! - every other character matches itself.
//!
//! Patterns are normalised as references are, so that a pattern means what the same text would
//! mean to `docker pull`: `alpine` is `docker.io/library/alpine`, `myorg/*` is
//! `docker.io/myorg/*`, `index.docker.io/...` is `docker.io/...`. As in signet-core's reference
//! parser, the first component names a registry only if it contains `.` or `:` or is
//! `localhost`; a first component that is exactly `**` spans registries and is not normalised.
//!
//! A pattern that cannot match any valid image name is an error that says why (uppercase in
//! the repository path, a tag or digest, characters no name contains, empty path components,
//! `***`): such a pattern in an allowlist would silently never apply.
//!
//! ```
//! use signet_policy::glob::Glob;
//!
//! let g = Glob::parse("registry.corp/team/*").unwrap();
//! assert!(g.matches("registry.corp/team/app"));
//! assert!(!g.matches("registry.corp/team/app/sub"));
//! assert!(Glob::parse("registry.corp/**").unwrap().matches("registry.corp/team/app/sub"));
//! assert!(Glob::parse("alpine").unwrap().matches("docker.io/library/alpine"));
//!
//! let err = Glob::parse("registry.corp/Team/*").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     r#"invalid name pattern "registry.corp/Team/*": the repository path must be lowercase"#
//! );
//! ```

use std::fmt;

use signet_core::reference::{
    DOCKER_HUB, ImageRef, ReferenceError, canonical_registry, looks_like_host, names_registry,
    repository_path,
};
/// distribution's `NameTotalLengthMax`: the longest `registry/repository`.
const NAME_MAX: usize = 255;

/// Why a string is not a usable name pattern. Every message quotes the pattern.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum GlobError {
    /// The pattern is empty.
    #[error("invalid name pattern \"\": empty pattern")]
    Empty,
    /// A character that no image name contains.
    #[error("invalid name pattern {pattern:?}: invalid character {character:?}{hint}")]
    InvalidCharacter {
        /// The pattern as written.
        pattern: String,
        /// The offending character.
        character: char,
        /// Extra explanation, starting with a separator, or empty.
        hint: &'static str,
    },
    /// The pattern carries a tag (`:tag` after the path) or a digest (`@`).
    #[error(
        "invalid name pattern {pattern:?}: patterns match image names without tag or digest; \
         remove {suffix:?}"
    )]
    TagOrDigest {
        /// The pattern as written.
        pattern: String,
        /// The `:tag` or `@digest` part.
        suffix: String,
    },
    /// The repository path has uppercase letters; image repositories are lowercase.
    #[error("invalid name pattern {pattern:?}: the repository path must be lowercase")]
    NotLowercase {
        /// The pattern as written.
        pattern: String,
    },
    /// A leading, trailing or doubled `/`.
    #[error(
        "invalid name pattern {pattern:?}: empty path component (leading, trailing or double \"/\")"
    )]
    EmptyPathComponent {
        /// The pattern as written.
        pattern: String,
    },
    /// Three or more `*` in a row.
    #[error("invalid name pattern {pattern:?}: \"***\" is not a wildcard; use \"*\" or \"**\"")]
    TooManyStars {
        /// The pattern as written.
        pattern: String,
    },
    /// A path component that breaks the repository grammar whatever the wildcards match.
    #[error(
        "invalid name pattern {pattern:?}: path component {component:?} cannot match any image \
         name: components start and end with a lowercase letter or digit, with single \".\", \
         \"_\" or \"__\" or runs of \"-\" between"
    )]
    InvalidPathComponent {
        /// The pattern as written.
        pattern: String,
        /// The offending component.
        component: String,
    },
    /// The registry part is not a valid `host[:port]`.
    #[error("invalid name pattern {pattern:?}: invalid registry {registry:?}: {reason}")]
    InvalidRegistry {
        /// The pattern as written.
        pattern: String,
        /// The registry part as written.
        registry: String,
        /// Why.
        reason: &'static str,
    },
    /// The pattern names a registry but no repository.
    #[error(
        "invalid name pattern {pattern:?}: it names a registry but no repository; write \
         \"{pattern}/**\" to match every image in it"
    )]
    MissingRepository {
        /// The pattern as written.
        pattern: String,
    },
    /// Even with every wildcard matching one character, the name is longer than any image name.
    #[error(
        "invalid name pattern {pattern:?}: too long: image names have at most {NAME_MAX} characters"
    )]
    TooLong {
        /// The pattern as written.
        pattern: String,
    },
}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A byte that matches itself.
    Literal(u8),
    /// `*`: any run of bytes without `/`.
    Star,
    /// `**`: any run of bytes.
    AnyRun,
    /// `**/` at the start of the pattern or after a `/`: nothing, or any run ending in `/`.
    AnyDirs,
}

/// A checked, normalised image name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// As written.
    pattern: String,
    /// After Docker Hub normalisation.
    normalized: String,
    tokens: Vec<Token>,
}

impl Glob {
    /// Parses and checks a pattern (see the [module docs](self) for the syntax).
    pub fn parse(pattern: &str) -> Result<Glob, GlobError> {
        let normalized = normalize(pattern)?;
        Ok(Glob {
            pattern: pattern.to_owned(),
            tokens: compile(&normalized),
            normalized,
        })
    }

    /// Whether `name` (a normalised `registry/repository`, as
    /// [`ImageRef::name`](signet_core::reference::ImageRef::name) returns it) matches.
    pub fn matches(&self, name: &str) -> bool {
        matches_tokens(&self.tokens, name.as_bytes())
    }

    /// The pattern as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The pattern after Docker Hub normalisation (`alpine` → `docker.io/library/alpine`).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The registry (`host[:port]`) the pattern names, when it is written out rather than
    /// matched by a wildcard: `127.0.0.1:5000` for `127.0.0.1:5000/**`, nothing for `**` or
    /// `*.example/**`.
    pub fn literal_registry(&self) -> Option<&str> {
        let registry = self.normalized.split('/').next()?;
        (!registry.is_empty() && !registry.contains('*')).then_some(registry)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// Checks `pattern` and returns its normalised form.
fn normalize(pattern: &str) -> Result<String, GlobError> {
    let owned = || pattern.to_owned();
    if pattern.is_empty() {
        return Err(GlobError::Empty);
    }
    if let Some(character) = pattern.chars().find(|c| !allowed_character(*c)) {
        let hint = match character {
            '?' => ": only \"*\" and \"**\" are wildcards",
            c if c.is_whitespace() => ": names contain no whitespace",
            _ => "",
        };
        return Err(GlobError::InvalidCharacter {
            pattern: owned(),
            character,
            hint,
        });
    }
    if let Some(at) = pattern.find('@') {
        return Err(GlobError::TagOrDigest {
            pattern: owned(),
            suffix: pattern.get(at..).unwrap_or_default().to_owned(),
        });
    }
    if pattern.contains("***") {
        return Err(GlobError::TooManyStars { pattern: owned() });
    }

    // Split off the registry with the reference parser's rule; "**" first spans registries.
    let (registry, path) = match pattern.split_once('/') {
        Some(("**", _)) => (None, pattern),
        Some((first, rest)) if names_registry(first) => (Some(first), rest),
        Some(_) => (Some(DOCKER_HUB), pattern),
        None if pattern == "**" => (None, pattern),
        None => {
            if looks_like_host(pattern) {
                return Err(GlobError::MissingRepository { pattern: owned() });
            }
            (Some(DOCKER_HUB), pattern)
        }
    };
    if let Some(colon) = path.find(':') {
        return Err(GlobError::TagOrDigest {
            pattern: owned(),
            suffix: path.get(colon..).unwrap_or_default().to_owned(),
        });
    }
    if path.split('/').any(str::is_empty) {
        return Err(GlobError::EmptyPathComponent { pattern: owned() });
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(GlobError::NotLowercase { pattern: owned() });
    }
    if let Some(character) = path
        .chars()
        .find(|&c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-' | '/' | '*'))
    {
        return Err(GlobError::InvalidCharacter {
            pattern: owned(),
            character,
            hint: " in the repository path",
        });
    }
    if let Some(component) = path.split('/').find(|c| !component_can_match(c)) {
        return Err(GlobError::InvalidPathComponent {
            pattern: owned(),
            component: component.to_owned(),
        });
    }

    let Some(registry) = registry else {
        return Ok(pattern.to_owned());
    };
    check_registry(pattern, registry)?;
    let registry = canonical_registry(registry);
    // A single path component on Docker Hub is an official image, unless `**` may span
    // several components.
    let normalized = if path.contains("**") {
        format!("{registry}/{path}")
    } else {
        format!("{registry}/{}", repository_path(registry, path))
    };
    // Each wildcard matches at least nothing; counting each as one character is generous.
    let shortest = normalized.replace("**", "*").len();
    if shortest > NAME_MAX {
        return Err(GlobError::TooLong { pattern: owned() });
    }
    Ok(normalized)
}

/// Characters an image name can contain (anywhere), and the wildcard.
fn allowed_character(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '[' | ']' | '*' | '@')
}

/// Checks the registry part by handing the reference parser a name in which every wildcard is
/// replaced by a character that is valid where it stands.
fn check_registry(pattern: &str, registry: &str) -> Result<(), GlobError> {
    if registry == DOCKER_HUB {
        return Ok(());
    }
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (registry, None),
    };
    let mut sample = host.replace("**", "x").replace('*', "x");
    if let Some(port) = port {
        sample.push(':');
        sample.push_str(&port.replace("**", "1").replace('*', "1"));
    }
    let invalid = |reason| GlobError::InvalidRegistry {
        pattern: pattern.to_owned(),
        registry: registry.to_owned(),
        reason,
    };
    match format!("{sample}/x").parse::<ImageRef>() {
        Ok(_) => Ok(()),
        Err(ReferenceError::InvalidPort { .. }) => {
            Err(invalid("the port must be a number from 1 to 65535"))
        }
        Err(ReferenceError::InvalidIpAddress { .. }) => Err(invalid("not a valid IP address")),
        Err(_) => Err(invalid(
            "host labels are letters, digits and inner \"-\", separated by single \".\"",
        )),
    }
}

/// Whether some string the wildcards could match makes `component` (between `/`s) a valid
/// repository path component, `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
///
/// Wildcards can always match a letter, which neither creates nor joins separator runs, so it
/// is enough that the literal text starts and ends right and has only valid separator runs.
fn component_can_match(component: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let sample = component.replace("**", "x").replace('*', "x");
    let starts_ok = sample.chars().next().is_some_and(alnum);
    let ends_ok = sample.chars().next_back().is_some_and(alnum);
    starts_ok
        && ends_ok
        && sample
            .split(alnum)
            .all(|run| matches!(run, "" | "." | "_" | "__") || run.bytes().all(|b| b == b'-'))
}

/// Turns a checked, normalised pattern into tokens.
fn compile(normalized: &str) -> Vec<Token> {
    let bytes = normalized.as_bytes();
    let mut tokens = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'*' {
            tokens.push(Token::Literal(b));
            i += 1;
            continue;
        }
        if bytes.get(i + 1) != Some(&b'*') {
            tokens.push(Token::Star);
            i += 1;
            continue;
        }
        // `**`: when it is a whole component followed by `/`, it may also match no directory
        // at all (`a/**/b` matches `a/b`).
        let at_component_start = i == 0 || bytes.get(i - 1) == Some(&b'/');
        if at_component_start && bytes.get(i + 2) == Some(&b'/') {
            tokens.push(Token::AnyDirs);
            i += 3;
        } else {
            tokens.push(Token::AnyRun);
            i += 2;
        }
    }
    tokens
}

/// Dynamic programming over (token, byte) positions: linear in the product of the lengths,
/// whatever the number of wildcards.
fn matches_tokens(tokens: &[Token], name: &[u8]) -> bool {
    let n = name.len();
    // `reach[j]`: the tokens seen so far can match exactly `name[..j]`.
    let mut reach = vec![false; n + 1];
    reach[0] = true;
    for token in tokens {
        let mut next = vec![false; n + 1];
        match token {
            Token::Literal(b) => {
                for j in 0..n {
                    if reach[j] && name[j] == *b {
                        next[j + 1] = true;
                    }
                }
            }
            Token::Star => {
                for j in 0..=n {
                    if reach[j] || (j > 0 && next[j - 1] && name[j - 1] != b'/') {
                        next[j] = true;
                    }
                }
            }
            Token::AnyRun => {
                let mut seen = false;
                for j in 0..=n {
                    seen |= reach[j];
                    next[j] = seen;
                }
            }
            Token::AnyDirs => {
                let mut seen = false;
                for j in 0..=n {
                    // Nothing, or anything that ends in `/`.
                    next[j] = reach[j] || (seen && j > 0 && name[j - 1] == b'/');
                    seen |= reach[j];
                }
            }
        }
        reach = next;
    }
    reach[n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_written_out_is_literal_and_a_wildcard_is_not() {
        let literal = |p: &str| {
            Glob::parse(p)
                .unwrap()
                .literal_registry()
                .map(str::to_string)
        };
        assert_eq!(
            literal("127.0.0.1:5000/**").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(literal("[::1]:5000/app").as_deref(), Some("[::1]:5000"));
        assert_eq!(literal("alpine").as_deref(), Some("docker.io"));
        assert_eq!(literal("**"), None);
        assert_eq!(literal("*.example/**"), None);
    }

    /// (pattern, names that match, names that do not).
    fn match_cases() -> Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)> {
        vec![
            // Literal patterns.
            (
                "registry.corp/team/app",
                vec!["registry.corp/team/app"],
                vec![
                    "registry.corp/team/app2",
                    "registry.corp/team",
                    "registry.corp/team/app/sub",
                    "other.corp/team/app",
                ],
            ),
            // `*` stays within one component.
            (
                "registry.corp/team/*",
                vec!["registry.corp/team/app", "registry.corp/team/a-b.c_d"],
                vec![
                    "registry.corp/team/app/sub",
                    "registry.corp/team",
                    "registry.corp/other/app",
                ],
            ),
            (
                "registry.corp/*/app",
                vec!["registry.corp/team/app", "registry.corp/x/app"],
                vec!["registry.corp/a/b/app", "registry.corp/app"],
            ),
            (
                "registry.corp/team/app-*",
                vec!["registry.corp/team/app-1", "registry.corp/team/app-web"],
                vec!["registry.corp/team/app", "registry.corp/team/app-1/x"],
            ),
            (
                "registry.corp/team/*-web",
                vec!["registry.corp/team/a-web"],
                vec!["registry.corp/team/x/a-web"],
            ),
            // `**` crosses `/`.
            (
                "registry.corp/**",
                vec![
                    "registry.corp/a",
                    "registry.corp/a/b",
                    "registry.corp/a/b/c/d",
                ],
                vec![
                    "registry.corp",
                    "registry.corpx/a",
                    "other.corp/registry.corp/a",
                ],
            ),
            (
                "registry.corp/team/**",
                vec!["registry.corp/team/app", "registry.corp/team/a/b"],
                vec!["registry.corp/team", "registry.corp/teamx/app"],
            ),
            (
                "registry.corp/team**",
                vec![
                    "registry.corp/team",
                    "registry.corp/team/a/b",
                    "registry.corp/teams",
                ],
                vec!["registry.corp/tea"],
            ),
            (
                "registry.corp/**/app",
                vec![
                    "registry.corp/app",
                    "registry.corp/team/app",
                    "registry.corp/a/b/app",
                ],
                vec!["registry.corp/team/app2", "registry.corp/team/myapp"],
            ),
            (
                "**",
                vec!["docker.io/library/alpine", "localhost:5000/a/b"],
                vec![],
            ),
            (
                "**/app",
                vec!["docker.io/library/app", "registry.corp/app"],
                vec!["registry.corp/app2"],
            ),
            // Wildcards in the registry.
            (
                "*.corp.example/**",
                vec!["registry.corp.example/a", "eu.corp.example/a/b"],
                vec!["corp.example/a", "a/b.corp.example/c"],
            ),
            // Ports.
            (
                "localhost:5000/*",
                vec!["localhost:5000/app"],
                vec!["localhost:5001/app", "localhost/app", "localhost:5000/a/b"],
            ),
            (
                "127.0.0.1:5000/team/**",
                vec!["127.0.0.1:5000/team/app"],
                vec!["127.0.0.1:5001/team/app"],
            ),
            (
                "localhost:*/app",
                vec!["localhost:5000/app", "localhost:80/app"],
                vec!["localhost/app"],
            ),
            (
                "[::1]:5000/app",
                vec!["[::1]:5000/app"],
                vec!["[::2]:5000/app"],
            ),
            // Docker Hub normalisation.
            (
                "alpine",
                vec!["docker.io/library/alpine"],
                vec!["docker.io/alpine", "alpine", "docker.io/library/alpine2"],
            ),
            (
                "docker.io/alpine",
                vec!["docker.io/library/alpine"],
                vec!["docker.io/alpine"],
            ),
            (
                "index.docker.io/library/alpine",
                vec!["docker.io/library/alpine"],
                vec!["index.docker.io/library/alpine"],
            ),
            (
                "myorg/*",
                vec!["docker.io/myorg/app"],
                vec!["docker.io/library/app", "myorg/app"],
            ),
            (
                "*",
                vec!["docker.io/library/alpine"],
                vec!["docker.io/myorg/app"],
            ),
            (
                "docker.io/**",
                vec!["docker.io/library/alpine", "docker.io/myorg/app"],
                vec!["ghcr.io/myorg/app"],
            ),
            (
                "localhost/app",
                vec!["localhost/app"],
                vec!["docker.io/localhost/app"],
            ),
        ]
    }

    #[test]
    fn matching() {
        let cases = match_cases();
        assert!(cases.len() >= 20);
        let mut failures = Vec::new();
        for (pattern, yes, no) in &cases {
            let glob = match Glob::parse(pattern) {
                Ok(g) => g,
                Err(e) => {
                    failures.push(format!("{pattern:?}: unexpected error {e}"));
                    continue;
                }
            };
            for name in yes {
                if !glob.matches(name) {
                    failures.push(format!("{pattern:?} should match {name:?}"));
                }
            }
            for name in no {
                if glob.matches(name) {
                    failures.push(format!("{pattern:?} should not match {name:?}"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn normalisation() {
        for (pattern, normalized) in [
            ("alpine", "docker.io/library/alpine"),
            ("alp*", "docker.io/library/alp*"),
            ("myorg/*", "docker.io/myorg/*"),
            ("docker.io/alpine", "docker.io/library/alpine"),
            ("docker.io/*", "docker.io/library/*"),
            ("docker.io/**", "docker.io/**"),
            ("index.docker.io/myorg/app", "docker.io/myorg/app"),
            ("registry.corp/**", "registry.corp/**"),
            ("**", "**"),
            ("**/app", "**/app"),
        ] {
            let glob = Glob::parse(pattern).unwrap();
            assert_eq!(glob.normalized(), normalized, "{pattern}");
            assert_eq!(glob.as_str(), pattern);
            assert_eq!(glob.to_string(), pattern);
        }
    }

    #[test]
    fn errors() {
        let long = format!("registry.corp/{}", "a".repeat(250));
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty pattern"),
            ("registry.corp/Team/app", "must be lowercase"),
            ("MyOrg/app", "must be lowercase"),
            (
                "registry.corp/team app",
                "invalid character ' ': names contain no whitespace",
            ),
            (" registry.corp/app", "invalid character ' '"),
            ("registry.corp/app?", "only \"*\" and \"**\" are wildcards"),
            (
                "registry.corp/app@sha256:abc",
                "without tag or digest; remove \"@sha256:abc\"",
            ),
            (
                "registry.corp/app:v1",
                "without tag or digest; remove \":v1\"",
            ),
            ("alpine:3.19", "remove \":3.19\""),
            ("registry.corp/a//b", "empty path component"),
            ("registry.corp/", "empty path component"),
            ("/app", "empty path component"),
            ("registry.corp/app/", "empty path component"),
            ("registry.corp/***", "\"***\" is not a wildcard"),
            ("registry.corp/-app", "path component \"-app\" cannot match"),
            ("registry.corp/app_*_", "path component \"app_*_\""),
            ("registry.corp/a..*", "path component \"a..*\""),
            ("registry.corp", "names a registry but no repository"),
            ("localhost:5000", "write \"localhost:5000/**\""),
            ("registry.corp:99999/app", "the port must be a number"),
            ("bad_host.corp/app", "invalid registry \"bad_host.corp\""),
            ("300.1.1.1/app", "not a valid IP address"),
            ("registry.corp/caf\u{e9}", "invalid character 'é'"),
            (long.as_str(), "too long"),
        ];
        let mut failures = Vec::new();
        for (pattern, want) in &cases {
            match Glob::parse(pattern) {
                Ok(g) => failures.push(format!("{pattern:?}: parsed as {:?}", g.normalized())),
                Err(e) => {
                    let message = e.to_string();
                    let quoted = format!("{pattern:?}");
                    if !message.contains(want) || !message.contains(&quoted) {
                        failures.push(format!("{pattern:?}: {message:?}, want {want:?}"));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn wildcards_accept_valid_components() {
        for ok in [
            "registry.corp/a_*",
            "registry.corp/*-*",
            "registry.corp/a__*",
            "registry.corp/a---*",
            "registry.corp/*.b",
            "*.corp:*/a",
        ] {
            assert!(Glob::parse(ok).is_ok(), "{ok}: {:?}", Glob::parse(ok));
        }
    }

    #[test]
    fn many_double_stars_stay_fast() {
        let pattern = format!("registry.corp/{}x", "a**".repeat(20));
        let glob = Glob::parse(&pattern).unwrap();
        let name = format!("registry.corp/{}", "a/".repeat(120));
        assert!(!glob.matches(name.trim_end_matches('/')));
    }
}
