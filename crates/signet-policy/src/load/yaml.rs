//! YAML nodes with positions: node helpers, the generic shapes every field is read through
//! (mappings of known fields, lists, strings, enumerations) and the hints in their messages.

use saphyr::{MarkedYaml, Scalar, YamlData};

use super::Checker;
use crate::model::Span;

pub(super) type Node<'a> = MarkedYaml<'a>;

/// Where `node` starts (saphyr's lines are 1-based, its columns 0-based).
pub(super) fn start(node: &Node<'_>) -> Span {
    Span {
        line: node.span.start.line().max(1),
        column: node.span.start.col() + 1,
    }
}

/// A `key: value` pair of a mapping.
#[derive(Clone, Copy)]
pub(super) struct Entry<'a> {
    pub(super) key: &'a Node<'a>,
    pub(super) value: &'a Node<'a>,
}

impl Entry<'_> {
    pub(super) fn key_span(&self) -> Span {
        start(self.key)
    }

    /// Where the value is; the key when the value is empty (`key:` and nothing after it).
    pub(super) fn value_span(&self) -> Span {
        if is_null(self.value) && self.value.span.is_empty() {
            self.key_span()
        } else {
            start(self.value)
        }
    }
}

/// A mapping whose keys have been checked against the known field names.
pub(super) struct Fields<'a> {
    /// Where "missing field" errors point.
    pub(super) at: Span,
    entries: Vec<(&'a str, Entry<'a>)>,
    /// Whether some key was not a known field (then a "missing" field may just be misspelt).
    pub(super) had_unknown: bool,
}

impl<'a> Fields<'a> {
    pub(super) fn get(&self, name: &str) -> Option<Entry<'a>> {
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, entry)| *entry)
    }
}

pub(super) fn is_null(node: &Node<'_>) -> bool {
    matches!(node.data, YamlData::Value(Scalar::Null))
}

pub(super) fn as_str<'a>(node: &'a Node<'a>) -> Option<&'a str> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s),
        _ => None,
    }
}

/// What a node is, for "expected X, found Y".
pub(super) fn describe(node: &Node<'_>) -> String {
    match &node.data {
        YamlData::Value(Scalar::Null) => "nothing".to_owned(),
        YamlData::Value(Scalar::Boolean(b)) => format!("the boolean `{b}`"),
        YamlData::Value(Scalar::Integer(i)) => format!("the number `{i}`"),
        YamlData::Value(Scalar::FloatingPoint(x)) => format!("the number `{x}`"),
        YamlData::Value(Scalar::String(s)) => {
            let shown: String = s.chars().take(40).collect();
            if shown.len() < s.len() {
                format!("the string {shown:?}…")
            } else {
                format!("the string {shown:?}")
            }
        }
        YamlData::Sequence(_) => "a list".to_owned(),
        YamlData::Mapping(_) => "a mapping".to_owned(),
        YamlData::Tagged(tag, _) => format!("a value tagged `{tag}` (tags are not supported)"),
        YamlData::Representation(..) | YamlData::Alias(_) | YamlData::BadValue => {
            "an invalid value".to_owned()
        }
    }
}

/// `` `a`, `b`, `c` ``.
pub(super) fn quoted_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items
        .into_iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The known name closest to `input`, if close enough to be a likely typo.
pub(super) fn suggest<'k>(
    input: &str,
    known: impl IntoIterator<Item = &'k str>,
) -> Option<&'k str> {
    let input_lower = input.to_ascii_lowercase();
    known
        .into_iter()
        .map(|k| (edit_distance(&input_lower, &k.to_ascii_lowercase()), k))
        .filter(|(d, k)| *d <= (k.len() / 4).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous[b.len()]
}

impl<'t> Checker<'t> {
    /// `node` as a mapping whose keys are all in `known`; unknown keys are reported.
    pub(super) fn fields<'a>(
        &mut self,
        node: &'a Node<'a>,
        at: Span,
        missing_at: Span,
        what: &str,
        known: &[&str],
    ) -> Option<Fields<'a>> {
        let YamlData::Mapping(map) = &node.data else {
            self.error(
                at,
                format!(
                    "{what} must be a mapping of fields, found {}",
                    describe(node)
                ),
            );
            return None;
        };
        let mut entries = Vec::new();
        let mut had_unknown = false;
        for (key, value) in map.iter() {
            let Some(name) = as_str(key) else {
                self.error(
                    start(key),
                    format!("field names in {what} are strings, found {}", describe(key)),
                );
                continue;
            };
            if !known.contains(&name) {
                had_unknown = true;
                let hint = suggest(name, known.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                let place = if what == "the policy" {
                    String::new()
                } else {
                    format!(" in {what}")
                };
                self.error(
                    start(key),
                    format!(
                        "unknown field `{name}`{place}{hint}; expected one of {}",
                        quoted_list(known)
                    ),
                );
                continue;
            }
            entries.push((name, Entry { key, value }));
        }
        Some(Fields {
            at: missing_at,
            entries,
            had_unknown,
        })
    }

    /// The value of `entry` as a mapping of fields; missing fields are reported at the key.
    pub(super) fn entry_fields<'a>(
        &mut self,
        entry: Entry<'a>,
        what: &str,
        known: &[&str],
    ) -> Option<Fields<'a>> {
        self.fields(
            entry.value,
            entry.value_span(),
            entry.key_span(),
            what,
            known,
        )
    }

    /// `node` as a list.
    pub(super) fn list<'a>(
        &mut self,
        node: &'a Node<'a>,
        at: Span,
        what: &str,
    ) -> Option<&'a [Node<'a>]> {
        match &node.data {
            YamlData::Sequence(items) => Some(items),
            _ => {
                let hint = if is_null(node) {
                    " (write `[]` for none)"
                } else {
                    ""
                };
                self.error(
                    at,
                    format!("{what} must be a list, found {}{hint}", describe(node)),
                );
                None
            }
        }
    }

    /// `node` as a string.
    pub(super) fn string<'a>(
        &mut self,
        node: &'a Node<'a>,
        at: Span,
        what: &str,
    ) -> Option<&'a str> {
        if let Some(s) = as_str(node) {
            return Some(s);
        }
        let hint = match node.data {
            YamlData::Value(Scalar::Boolean(_) | Scalar::Integer(_) | Scalar::FloatingPoint(_)) => {
                " (quote it to make it a string)"
            }
            _ => "",
        };
        self.error(
            at,
            format!("{what} must be a string, found {}{hint}", describe(node)),
        );
        None
    }

    /// A string that must be one of `allowed`.
    pub(super) fn enumeration<'a>(
        &mut self,
        entry: Entry<'a>,
        field: &str,
        allowed: &[&'static str],
        hint: &str,
    ) -> Option<&'static str> {
        let value = self.string(entry.value, entry.value_span(), &format!("`{field}`"))?;
        if let Some(found) = allowed.iter().find(|a| **a == value) {
            return Some(found);
        }
        let suggestion = suggest(value, allowed.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        self.error(
            entry.value_span(),
            format!(
                "invalid `{field}` `{value}`{suggestion}{hint}; expected one of {}",
                quoted_list(allowed)
            ),
        );
        None
    }
}

/// The flow collection (`[` or `{`, and its line) still open at character `end` of `text`, if
/// any: a YAML scanner reports a missing `]` only where something else stops making sense.
pub(super) fn unclosed_bracket(text: &str, end: usize) -> Option<(char, usize)> {
    let mut open: Vec<(char, usize)> = Vec::new();
    let mut line = 1;
    let mut quote = None;
    let mut comment = false;
    // The last character that is not a space on this line, if any.
    let mut last_significant = None;
    let mut previous = '\n';
    for c in text.chars().take(end) {
        if c == '\n' {
            line += 1;
            comment = false;
            last_significant = None;
            previous = c;
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if comment => {}
            None => match c {
                '#' if previous.is_whitespace() => comment = true,
                '"' | '\'' if previous.is_whitespace() || "[{,".contains(previous) => {
                    quote = Some(c);
                }
                '[' | '{' => {
                    // In block context, a bracket opens a flow collection only where a value
                    // starts; in flow context, anywhere.
                    let starts_value = matches!(last_significant, None | Some(':' | '-'))
                        && previous.is_whitespace();
                    if !open.is_empty() || starts_value {
                        open.push((c, line));
                    }
                }
                ']' | '}' if !open.is_empty() => {
                    open.pop();
                }
                _ => {}
            },
        }
        if !c.is_whitespace() {
            last_significant = Some(c);
        }
        previous = c;
    }
    open.first().copied()
}
