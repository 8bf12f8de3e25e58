//! `LIKE` patterns: `%` matches any run of characters (also none), `_` exactly one character,
//! an `ESCAPE` character makes the next `%`, `_` or itself literal. Matching is by character
//! (not byte), case-sensitive, over the whole value.
//!
//! A pattern is compiled once into the literal runs between its `%`s. Matching anchors the
//! first run at the start and the last at the end (unless the pattern starts or ends with `%`)
//! and finds each run in between at its leftmost place: runs have a fixed length in
//! characters, so the leftmost place never loses a match. The cost is at most the value's
//! length times the pattern's, and linear (`str::find`) when the pattern has no `_`.

use super::error::ErrorKind;

/// One character of a run: itself, or `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Char(char),
    AnyOne,
}

/// The text between two `%`s.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    /// No `_`: plain text.
    Text(Box<str>),
    /// With `_`: matched character by character.
    Pieces(Vec<Piece>),
}

impl Run {
    fn from_pieces(pieces: Vec<Piece>) -> Run {
        if pieces.iter().all(|p| matches!(p, Piece::Char(_))) {
            Run::Text(
                pieces
                    .iter()
                    .filter_map(|p| match p {
                        Piece::Char(c) => Some(*c),
                        Piece::AnyOne => None,
                    })
                    .collect::<String>()
                    .into(),
            )
        } else {
            Run::Pieces(pieces)
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Run::Text(t) => t.is_empty(),
            Run::Pieces(p) => p.is_empty(),
        }
    }

    /// The byte length of this run matched at the start of `text`, if it matches there.
    fn match_at(&self, text: &str) -> Option<usize> {
        match self {
            Run::Text(t) => text.starts_with(&**t).then_some(t.len()),
            Run::Pieces(pieces) => {
                let mut chars = text.char_indices();
                for piece in pieces {
                    let (_, c) = chars.next()?;
                    if let Piece::Char(want) = piece
                        && *want != c
                    {
                        return None;
                    }
                }
                Some(chars.next().map_or(text.len(), |(i, _)| i))
            }
        }
    }

    /// The leftmost match in `text`: (start, end) in bytes.
    fn find(&self, text: &str) -> Option<(usize, usize)> {
        match self {
            Run::Text(t) => text.find(&**t).map(|i| (i, i + t.len())),
            Run::Pieces(_) => text
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(text.len()))
                .find_map(|i| self.match_at(&text[i..]).map(|n| (i, i + n))),
        }
    }

    /// Whether this run matches the end of `text[from..]` exactly.
    fn matches_end(&self, text: &str, from: usize) -> bool {
        let start = match self {
            Run::Text(t) => text.len().checked_sub(t.len()),
            Run::Pieces(p) if p.is_empty() => Some(text.len()),
            Run::Pieces(p) => text.char_indices().rev().nth(p.len() - 1).map(|(i, _)| i),
        };
        match start {
            Some(start) if start >= from && text.is_char_boundary(start) => {
                self.match_at(&text[start..]) == Some(text.len() - start)
            }
            _ => false,
        }
    }
}

/// A compiled `LIKE` pattern, with its text and escape character for printing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LikePattern {
    source: Box<str>,
    escape: Option<char>,
    /// The runs between `%`s; a pattern without `%` is one run.
    runs: Vec<Run>,
    /// Whether the pattern has a `%` at all.
    wild: bool,
    /// Whether the first run is anchored at the start (no leading `%`).
    anchored_start: bool,
    /// Whether the last run is anchored at the end (no trailing `%`).
    anchored_end: bool,
}

impl LikePattern {
    /// Compiles `source`; an escape character must be followed by `%`, `_` or itself.
    pub(super) fn new(source: &str, escape: Option<char>) -> Result<LikePattern, ErrorKind> {
        let mut runs = Vec::new();
        let mut run = Vec::new();
        let mut chars = source.chars();
        let mut wild = false;
        while let Some(c) = chars.next() {
            if Some(c) == escape {
                match chars.next() {
                    Some(n) if n == '%' || n == '_' || Some(n) == escape => {
                        run.push(Piece::Char(n))
                    }
                    _ => return Err(ErrorKind::BadPattern(c)),
                }
            } else if c == '%' {
                wild = true;
                runs.push(Run::from_pieces(std::mem::take(&mut run)));
            } else if c == '_' {
                run.push(Piece::AnyOne);
            } else {
                run.push(Piece::Char(c));
            }
        }
        runs.push(Run::from_pieces(run));
        let anchored_start = !runs.first().is_some_and(Run::is_empty);
        let anchored_end = !runs.last().is_some_and(Run::is_empty);
        Ok(LikePattern {
            source: source.into(),
            escape,
            runs,
            wild,
            anchored_start,
            anchored_end,
        })
    }

    pub(super) fn source(&self) -> &str {
        &self.source
    }

    pub(super) fn escape(&self) -> Option<char> {
        self.escape
    }

    /// Whether `text` matches the whole pattern.
    pub(super) fn matches(&self, text: &str) -> bool {
        let Some((first, rest)) = self.runs.split_first() else {
            return text.is_empty();
        };
        if !self.wild {
            return first.match_at(text) == Some(text.len());
        }
        let mut pos = 0;
        if self.anchored_start {
            match first.match_at(text) {
                Some(n) => pos = n,
                None => return false,
            }
        }
        // `rest` is not empty: a pattern with a `%` has at least two runs.
        let (last, middle) = match rest.split_last() {
            Some(split) => split,
            None => return true,
        };
        for run in middle.iter().filter(|r| !r.is_empty()) {
            match run.find(&text[pos..]) {
                Some((_, end)) => pos += end,
                None => return false,
            }
        }
        if self.anchored_end {
            last.matches_end(text, pos)
        } else {
            true
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn like(pattern: &str, escape: Option<char>, text: &str) -> bool {
        LikePattern::new(pattern, escape).unwrap().matches(text)
    }

    #[test]
    fn wildcards() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "", true),
            ("", "a", false),
            ("%", "", true),
            ("%", "anything", true),
            ("%%", "x", true),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("abc", "ab", false),
            ("a%", "a", true),
            ("a%", "abc", true),
            ("a%", "ba", false),
            ("%a", "ba", true),
            ("%a", "ab", false),
            ("%b%", "abc", true),
            ("%b%", "ac", false),
            ("a%c", "ac", true),
            ("a%c", "abbbc", true),
            ("a%c", "abcb", false),
            ("a%a", "a", false),
            ("a%a", "aa", true),
            ("_", "a", true),
            ("_", "", false),
            ("_", "ab", false),
            ("_", "é", true),
            ("a_c", "abc", true),
            ("a_c", "ac", false),
            ("%_", "", false),
            ("%_", "x", true),
            ("_%_", "x", false),
            ("_%_", "xy", true),
            ("%a_c%", "xxabcxx", true),
            ("%a_c", "abcabd", false),
            ("%a_c", "abdabc", true),
            ("%é_%", "xéyz", true),
            ("12%3", "123", true),
            ("12%3", "12", false),
            ("l_ng%", "long text", true),
            ("%ab%ab%", "abab", true),
            ("%ab%ab%", "aba", false),
            ("%aa%aa", "aaa", false),
            ("%aa%aa", "aaaa", true),
            ("ABC", "abc", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(
                like(pattern, None, text),
                *want,
                "{text:?} LIKE {pattern:?}"
            );
        }
    }

    #[test]
    fn escapes() {
        assert!(like("100\\%", Some('\\'), "100%"));
        assert!(!like("100\\%", Some('\\'), "1000"));
        assert!(like("a\\_b", Some('\\'), "a_b"));
        assert!(!like("a\\_b", Some('\\'), "axb"));
        assert!(like("a\\\\b", Some('\\'), "a\\b"));
        assert!(like("!%%", Some('!'), "%abc"));
        assert!(!like("!%%", Some('!'), "abc"));
        // The escape character may itself be a wildcard character, which it then replaces.
        assert!(like("%%", Some('%'), "%"));
        assert!(!like("%%", Some('%'), "x"));
        assert!(like("__", Some('_'), "_"));
        assert!(!like("__", Some('_'), "x"));
        assert_eq!(
            LikePattern::new("a\\b", Some('\\')),
            Err(ErrorKind::BadPattern('\\'))
        );
        assert_eq!(
            LikePattern::new("a\\", Some('\\')),
            Err(ErrorKind::BadPattern('\\'))
        );
        assert_eq!(
            LikePattern::new("%", Some('%')),
            Err(ErrorKind::BadPattern('%'))
        );
    }

    /// A slow, obviously right matcher to check the fast one against.
    fn reference(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('%', rest)) => (0..=text.len()).any(|i| reference(rest, &text[i..])),
            Some(('_', rest)) => !text.is_empty() && reference(rest, &text[1..]),
            Some((c, rest)) => text.first() == Some(c) && reference(rest, &text[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_a_reference_matcher(pattern in "[ab%_é]{0,8}", text in "[abé]{0,10}") {
            let p: Vec<char> = pattern.chars().collect();
            let t: Vec<char> = text.chars().collect();
            proptest::prop_assert_eq!(like(&pattern, None, &text), reference(&p, &t));
        }
    }
}
