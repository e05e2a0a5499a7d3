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
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            match b {
                b'\\' => i += 1,
                _ if b == q => quote = None,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' | b'\'' => quote = Some(b),
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
            b'+' | b'-' | b'*' | b'/' | b'%' | b'!' | b'<' | b'>' | b'?' => operators += 1,
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
            ".a".repeat(MAX_CONDITION_OPERATORS - 2)
        );
        let worst = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                for source in [chain, nested, members] {
                    assert_eq!(check(&source), None, "{source}");
                    let program = cel::Program::compile(&source).expect("compiles");
                    let _ = program.execute(&cel::Context::default());
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
        // Inside strings nothing counts.
        let quoted = format!("x == \"{}\"", "(".repeat(100));
        assert_eq!(check(&quoted), None);
    }
}
