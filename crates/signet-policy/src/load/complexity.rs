//! Bounds on a condition before CEL sees it. CEL's parser and interpreter recurse once per
//! operator, member access or index, so a condition of 10,000 chained terms overflows a
//! thread's stack: `policy check` on the main thread (8 MiB) passed one that aborted the daemon
//! on a worker thread (2 MiB). Real conditions are a line or two; bounding the size, the number
//! of operators and the bracket nesting keeps every condition far from any stack, so a policy
//! is judged the same by `policy check`, `verify --policy`, `serve` and a reload.

/// Longest condition accepted, in bytes.
pub(crate) const MAX_CONDITION_BYTES: usize = 4096;
/// Most operators, member accesses (`.`), indexes and calls in one condition.
pub(crate) const MAX_CONDITION_OPERATORS: usize = 256;
/// Deepest nesting of `(`, `[` and `{` in one condition.
pub(crate) const MAX_CONDITION_NESTING: usize = 32;

/// Why `source` is too large or too complex to compile, with the byte offset of where the
/// bound was passed; `None` if it is within bounds.
pub(crate) fn check(source: &str) -> Option<(usize, String)> {
    if source.len() > MAX_CONDITION_BYTES {
        return Some((
            MAX_CONDITION_BYTES,
            format!(
                "condition is {} bytes long, more than the {MAX_CONDITION_BYTES} a condition may have",
                source.len()
            ),
        ));
    }
    let bytes = source.as_bytes();
    let (mut operators, mut depth) = (0usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // Comments (`// …` to the end of the line) count for nothing.
        if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
            i = bytes[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(bytes.len(), |p| i + p);
            continue;
        }
        // String and bytes literals, as CEL reads them: an optional `r`/`b` prefix (raw: no
        // escapes), one or three quotes of either kind.
        if b == b'"' || b == b'\'' {
            let raw = i > 0
                && matches!(bytes[i - 1], b'r' | b'R')
                && (i < 2
                    || !bytes[i - 2].is_ascii_alphanumeric()
                    || matches!(bytes[i - 2], b'b' | b'B'));
            match string_end(bytes, i, raw) {
                Some(end) => {
                    i = end;
                    continue;
                }
                None => {
                    return Some((i, "condition has a string that is never closed".to_string()));
                }
            }
        }
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                operators += 1;
                if depth > MAX_CONDITION_NESTING {
                    return Some((
                        i,
                        format!("condition nests brackets more than {MAX_CONDITION_NESTING} deep"),
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'.' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => operators += 1,
            b'+' | b'-' | b'*' | b'/' | b'%' | b'!' | b'<' | b'>' | b'?' | b':' => operators += 1,
            // `==`, `&&`, `||`: one operator for the pair.
            b'=' | b'&' | b'|' if bytes.get(i + 1) == Some(&b) => {
                operators += 1;
                i += 1;
            }
            _ => {}
        }
        if operators > MAX_CONDITION_OPERATORS {
            return Some((
                i,
                format!(
                    "condition has more than {MAX_CONDITION_OPERATORS} operators, member \
                     accesses and indexes"
                ),
            ));
        }
        i += 1;
    }
    None
}

/// The index just past the string literal whose opening quote is at `start`, or `None` when
/// it is never closed. A raw string has no escapes; a triple-quoted one ends at the same three
/// quotes and may span lines; a single-quoted one ends at its quote and not past a line end.
fn string_end(bytes: &[u8], start: usize, raw: bool) -> Option<usize> {
    let quote = bytes[start];
    let triple = bytes.get(start..start + 3) == Some(&[quote, quote, quote][..]);
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\\' && !raw {
            i += 2;
            continue;
        }
        if triple {
            if bytes.get(i..i + 3) == Some(&[quote, quote, quote][..]) {
                return Some(i + 3);
            }
        } else if c == quote {
            return Some(i + 1);
        } else if c == b'\n' {
            return None;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_conditions_pass() {
        for c in [
            "statement.predicate.approved == true",
            "statement.predicate.scanner.result.summary.critical == 0 && statement.predicate.tests.failed < 1",
            r#"statement.predicate["release-note"] != "" || (1 + 2) * 3 > 4"#,
            "size(statement.subject) >= 1 ? true : false",
            "'a.b(c)[d]' == \"((((\"",
        ] {
            assert_eq!(check(c), None, "{c}");
        }
    }

    /// The largest conditions the bounds let through compile and run on a 2 MiB stack (a
    /// tokio worker's, and the test thread's), in a debug build, whose frames are the largest.
    #[test]
    fn the_worst_conditions_within_bounds_compile_and_run_on_a_small_stack() {
        let chain = vec!["1"; MAX_CONDITION_OPERATORS].join("+") + " > 0";
        let nested = format!(
            "{}1{} > 0",
            "(".repeat(MAX_CONDITION_NESTING),
            ")".repeat(MAX_CONDITION_NESTING)
        );
        let members = format!(
            "{{\"a\": 1}}{} == 1",
            ".a".repeat(MAX_CONDITION_OPERATORS - 3)
        );
        let worst = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let nots = format!("{}true", "!".repeat(MAX_CONDITION_OPERATORS));
                let negations = format!("{}1 < 0", "-".repeat(MAX_CONDITION_OPERATORS - 1));
                let ternaries = "true ? 1 : ".repeat(MAX_CONDITION_OPERATORS / 2) + "0";
                for source in [chain, nested, members, nots, negations, ternaries] {
                    assert_eq!(check(&source), None, "{source}");
                    // A compile error (CEL's own nesting limit) is a clean answer too; only a
                    // crash is not.
                    if let Ok(program) = cel::Program::compile(&source) {
                        let _ = program.execute(&cel::Context::default());
                    }
                }
            })
            .expect("a thread");
        worst.join().expect("no stack overflow");
    }

    #[test]
    fn long_chains_deep_nesting_and_huge_conditions_are_refused() {
        let chain = vec!["1"; 10_000].join("+") + " > 0";
        assert!(check(&chain).unwrap().1.contains("bytes long"));
        let chain = vec!["1"; 300].join("+") + " > 0";
        assert!(check(&chain).unwrap().1.contains("more than 256 operators"));
        let members = format!("statement{}", ".a".repeat(300));
        assert!(check(&members).is_some());
        let index = format!("x{}", "[0]".repeat(300));
        assert!(check(&index).is_some());
        let nested = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        assert!(check(&nested).unwrap().1.contains("32 deep"));
        assert!(check(&"a".repeat(5000)).unwrap().1.contains("bytes long"));
        // Inside strings and comments nothing counts.
        let quoted = format!("x == \"{}\"", "(".repeat(100));
        assert_eq!(check(&quoted), None);
        assert_eq!(
            check("x == 1 // don't (((((((((((((((((((((((((((((((((((((\n"),
            None
        );
        // Quotes that do not hide what follows them.
        let chain = vec!["1"; 300].join("+");
        for trick in [
            format!(r#"r"\" + {chain}"#),
            format!(r#""""a"b""" + {chain}"#),
            format!("x // don't\n + {chain}"),
            format!("'a\\'' + {chain}"),
        ] {
            let refused = check(&trick).map(|(_, m)| m).unwrap_or_default();
            assert!(refused.contains("operators"), "{trick}: {refused:?}");
        }
        assert!(
            check("x == \"never closed")
                .unwrap()
                .1
                .contains("never closed")
        );
        assert!(check(&format!("{}1", "!".repeat(300))).is_some());
        assert!(check(&format!("{}1", "-".repeat(300))).is_some());
    }
}
