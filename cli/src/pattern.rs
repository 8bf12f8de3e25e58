//! Glob patterns for `--queue`: `*` matches any run of characters (also none), `?` exactly one,
//! everything else itself. No pattern characters means an exact match.

/// Whether `name` matches `pattern`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Position of the last `*` seen and the name position it was tried at: on a mismatch,
    // let that star swallow one more character and retry (linear backtracking).
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some('?') => {
                pi += 1;
                ni += 1;
            }
            Some(c) if *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn exact_and_wildcards() {
        assert!(glob_match("demo", "demo"));
        assert!(!glob_match("demo", "demo2"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("orders.*", "orders.eu"));
        assert!(!glob_match("orders.*", "order.eu"));
        assert!(glob_match("*.eu", "orders.eu"));
        assert!(glob_match("o*s*u", "orders.eu"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("q?", "q1"));
        assert!(!glob_match("q?", "q"));
        assert!(glob_match("**x", "abx"));
        assert!(glob_match("DLQ", "DLQ"));
    }
}
