//! The security file (`--security FILE`, TOML): users, their groups, and authorization entries,
//! read and checked in full before a node uses any of it.
//!
//! ```toml
//! anonymous = false                  # clients without a login get group "anonymous" when true
//! bridge-groups = ["brokers"]        # members may act as network bridges
//!
//! [[users]]
//! name = "app"
//! password = "$argon2id$v=19$m=19456,t=2,p=1$..."   # `mqctl security hash-password`
//! groups = ["apps"]
//!
//! [[authorization]]                  # first matching entry in file order decides
//! destination = "queue://orders.>"   # queue://, topic:// or temp://, wildcards . * >
//! read = ["apps"]                    # SUBSCRIBE, browse
//! write = ["apps"]                   # SEND
//! admin = ["apps"]                   # creating the destination
//! ```
//!
//! - Unknown keys are errors. So are a duplicate user name, a password that is not an argon2id
//!   PHC string, a user without groups, an empty `read`/`write`/`admin` list (leave the key out
//!   to grant nobody), an empty group name, and a destination without one of the three
//!   prefixes or with a malformed pattern. Every error names the file, the line and the column.
//! - Patterns use ActiveMQ's wildcards over `.`-separated names: `*` one segment, `>` one or
//!   more trailing segments (so `orders.>` does not match `orders` itself).
//! - `temp://PATTERN` entries apply to temporary destinations (`/temp-queue/NAME`,
//!   `/temp-topic/NAME`), matched on NAME; `temp://>` covers them all.
//! - An entry with none of `read`, `write`, `admin` denies everything on what it matches: put
//!   it before broader entries to carve out an exception.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use mq_shared::password::PasswordHash;
use mq_shared::uri::{DestinationFilter, UriError};
use serde::Deserialize;
use toml::Spanned;

/// Why a security file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the security file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not valid: where and why.
    #[error("security file {}, line {line}, column {column}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending part.
        line: usize,
        /// 1-based column (in characters) of the offending part.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// One user: a name, a password hash and the groups it is in.
#[derive(Debug, Clone)]
pub struct User {
    /// Login name.
    pub name: String,
    /// The password's argon2id hash.
    pub password: PasswordHash,
    /// Groups, at least one.
    pub groups: Vec<String>,
}

/// What an authorization entry's destination pattern covers.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// `queue://PATTERN` or `topic://PATTERN`.
    Destination(DestinationFilter),
    /// `temp://PATTERN`: temporary queues and topics, matched on their name.
    Temp(DestinationFilter),
}

/// An authorization entry (ActiveMQ `authorizationEntry`): who may read, write and create what
/// its pattern matches. `None`: nobody.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The pattern as written, e.g. `queue://orders.>`.
    pub destination: String,
    /// What it matches.
    pub pattern: Pattern,
    /// Groups that may SUBSCRIBE and browse.
    pub read: Option<Vec<String>>,
    /// Groups that may SEND.
    pub write: Option<Vec<String>>,
    /// Groups that may create the destination.
    pub admin: Option<Vec<String>>,
    /// Line of the entry's `destination`, for logs.
    pub line: usize,
}

/// A checked security file.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// `anonymous`: clients without a login are let in, in group `anonymous`.
    pub anonymous: bool,
    /// `bridge-groups`: members may act as network bridges.
    pub bridge_groups: Vec<String>,
    /// Users by name.
    pub users: HashMap<String, User>,
    /// Authorization entries in file order.
    pub authorization: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    #[serde(default)]
    anonymous: bool,
    #[serde(default)]
    bridge_groups: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    authorization: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    password: Spanned<String>,
    groups: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    destination: Spanned<String>,
    read: Option<Spanned<Vec<Spanned<String>>>>,
    write: Option<Spanned<Vec<Spanned<String>>>>,
    admin: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Where an offending part is and what is wrong with it.
struct Problem {
    span: Range<usize>,
    message: String,
}

fn problem(span: Range<usize>, message: impl Into<String>) -> Problem {
    Problem {
        span,
        message: message.into(),
    }
}

impl SecurityConfig {
    /// Reads and checks the security file at `path`.
    pub fn load(path: &Path) -> Result<SecurityConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        SecurityConfig::parse(&text, path)
    }

    /// Checks the text of a security file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<SecurityConfig, ConfigError> {
        parse(text).map_err(|p| {
            let (line, column) = line_column(text, p.span.start);
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: p.message,
            }
        })
    }
}

fn parse(text: &str) -> Result<SecurityConfig, Problem> {
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| problem(e.span().unwrap_or(0..0), e.message().trim_end().to_string()))?;
    let bridge_groups = match raw.bridge_groups {
        Some(list) => groups(list.into_inner(), "bridge-groups")?,
        None => Vec::new(),
    };
    let mut users: HashMap<String, User> = HashMap::new();
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    for u in raw.users {
        let name_span = u.name.span();
        let name = u.name.into_inner();
        if name.trim().is_empty() {
            return Err(problem(name_span, "a user's name must not be empty"));
        }
        if let Some(first) = first_seen.get(&name) {
            let (line, _) = line_column(text, *first);
            return Err(problem(
                name_span,
                format!("user '{name}' is defined twice (first on line {line})"),
            ));
        }
        first_seen.insert(name.clone(), name_span.start);
        let password = PasswordHash::parse(u.password.get_ref())
            .map_err(|e| problem(u.password.span(), format!("password of user '{name}': {e}")))?;
        let groups_span = u.groups.span();
        let groups = groups(u.groups.into_inner(), "groups")?;
        if groups.is_empty() {
            return Err(problem(
                groups_span,
                format!("user '{name}' is in no group: name at least one in `groups`"),
            ));
        }
        users.insert(
            name.clone(),
            User {
                name,
                password,
                groups,
            },
        );
    }
    let mut authorization = Vec::with_capacity(raw.authorization.len());
    for e in raw.authorization {
        let span = e.destination.span();
        let destination = e.destination.into_inner();
        let pattern = pattern(&destination).map_err(|m| problem(span.clone(), m))?;
        authorization.push(Entry {
            line: line_column(text, span.start).0,
            pattern,
            read: grant(e.read, "read")?,
            write: grant(e.write, "write")?,
            admin: grant(e.admin, "admin")?,
            destination,
        });
    }
    Ok(SecurityConfig {
        anonymous: raw.anonymous,
        bridge_groups,
        users,
        authorization,
    })
}

/// A list of group names, none empty.
fn groups(list: Vec<Spanned<String>>, key: &str) -> Result<Vec<String>, Problem> {
    list.into_iter()
        .map(|g| {
            if g.get_ref().trim().is_empty() {
                Err(problem(g.span(), format!("an empty group name in `{key}`")))
            } else {
                Ok(g.into_inner())
            }
        })
        .collect()
}

/// `read`, `write` or `admin` of an entry: absent is nobody; present must name a group.
fn grant(
    list: Option<Spanned<Vec<Spanned<String>>>>,
    key: &str,
) -> Result<Option<Vec<String>>, Problem> {
    let Some(list) = list else {
        return Ok(None);
    };
    let span = list.span();
    let groups = groups(list.into_inner(), key)?;
    if groups.is_empty() {
        return Err(problem(
            span,
            format!("`{key} = []` grants nobody: name at least one group, or leave `{key}` out"),
        ));
    }
    Ok(Some(groups))
}

/// `queue://P`, `topic://P` or `temp://P`.
fn pattern(destination: &str) -> Result<Pattern, String> {
    let (kind, rest) = destination.split_once("://").ok_or_else(|| {
        format!(
            "destination '{destination}' must start with queue://, topic:// or temp:// \
             (e.g. queue://orders.>)"
        )
    })?;
    let filter = |prefix: &str| {
        if rest.is_empty() {
            return Err(format!(
                "destination '{destination}' has no pattern (write {kind}://> for all)"
            ));
        }
        if rest.starts_with('/') {
            return Err(format!(
                "destination '{destination}': write the name after {kind}:// without a leading '/'"
            ));
        }
        DestinationFilter::parse(&format!("{prefix}{rest}")).map_err(|e| match e {
            UriError::BadDestination { reason, .. } => {
                format!("destination '{destination}': {reason}")
            }
            e => format!("destination '{destination}': {e}"),
        })
    };
    match kind {
        "queue" => Ok(Pattern::Destination(filter("/queue/")?)),
        "topic" => Ok(Pattern::Destination(filter("/topic/")?)),
        // Matched on the temporary destination's name, as a bare (queue) name.
        "temp" => Ok(Pattern::Temp(filter("")?)),
        _ => Err(format!(
            "destination '{destination}' has an unknown prefix '{kind}://' (want queue://, topic:// or temp://)"
        )),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash of "pw" (argon2id, the default costs).
    const PW_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$6dJqIjlJKOqcud4DHLnksA$UThbLHX4atsgSY8CfeQxkeLjJmZg0TKHR6m21FWka+A";

    fn parse_ok(text: &str) -> SecurityConfig {
        match SecurityConfig::parse(text, Path::new("sec.toml")) {
            Ok(c) => c,
            Err(e) => panic!("should parse: {e}"),
        }
    }

    /// The error for `text`, which must not parse, and its line and column.
    fn parse_err(text: &str) -> (String, usize, usize) {
        match SecurityConfig::parse(text, Path::new("sec.toml")) {
            Ok(_) => panic!("should not parse:\n{text}"),
            Err(e @ ConfigError::Invalid { line, column, .. }) => (e.to_string(), line, column),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    fn user(name: &str, groups: &str) -> String {
        format!("[[users]]\nname = \"{name}\"\npassword = \"{PW_HASH}\"\ngroups = {groups}\n")
    }

    #[test]
    fn the_documented_example_parses() {
        let text = format!(
            "anonymous = false\nbridge-groups = [\"brokers\"]\n{}{}\
             [[authorization]]\ndestination = \"queue://orders.>\"\nread = [\"apps\"]\nwrite = [\"apps\"]\nadmin = [\"apps\"]\n\
             [[authorization]]\ndestination = \"topic://prices.*\"\nread = [\"apps\", \"anonymous\"]\n\
             [[authorization]]\ndestination = \"temp://>\"\nwrite = [\"apps\"]\n",
            user("app", "[\"apps\"]"),
            user("broker", "[\"brokers\"]"),
        );
        let c = parse_ok(&text);
        assert!(!c.anonymous);
        assert_eq!(c.bridge_groups, ["brokers"]);
        assert_eq!(c.users.len(), 2);
        assert_eq!(c.users["app"].groups, ["apps"]);
        assert_eq!(c.authorization.len(), 3);
        let e = &c.authorization[0];
        assert_eq!(e.destination, "queue://orders.>");
        assert_eq!(e.line, 12);
        assert!(matches!(&e.pattern, Pattern::Destination(f) if f.matches("/queue/orders.eu")));
        assert_eq!(c.authorization[1].write, None);
        assert!(matches!(&c.authorization[2].pattern, Pattern::Temp(_)));
    }

    #[test]
    fn an_empty_file_is_a_closed_node() {
        let c = parse_ok("");
        assert!(!c.anonymous && c.users.is_empty() && c.authorization.is_empty());
    }

    #[test]
    fn syntax_errors_and_unknown_keys_name_line_and_column() {
        let (e, line, column) = parse_err("anonymous = false\nanonymus = true\n");
        assert_eq!((line, column), (2, 1), "{e}");
        assert!(
            e.starts_with("security file sec.toml, line 2, column 1: "),
            "{e}"
        );
        assert!(e.contains("anonymus"), "{e}");
        let (e, line, _) = parse_err(&format!("{}colour = \"red\"\n", user("a", "[\"g\"]")));
        assert_eq!(line, 5, "{e}");
        assert!(e.contains("colour"), "{e}");
        let (e, line, _) =
            parse_err("[[authorization]]\ndestination = \"queue://a\"\nreed = [\"g\"]\n");
        assert_eq!(line, 3, "{e}");
        let (e, line, _) = parse_err("anonymous = \"yes\"\n");
        assert_eq!(line, 1, "{e}");
        let (e, line, _) = parse_err("[[users]\nname = \"x\"\n");
        assert_eq!(line, 1, "{e}");
        let (e, _, _) = parse_err("[[users]]\nname = \"x\"\ngroups = [\"g\"]\n");
        assert!(e.contains("password"), "{e}");
    }

    #[test]
    fn user_errors_name_the_line() {
        let twice = format!("{}{}", user("app", "[\"a\"]"), user("app", "[\"b\"]"));
        let (e, line, column) = parse_err(&twice);
        assert_eq!((line, column), (6, 8), "{e}");
        assert!(
            e.contains("user 'app' is defined twice (first on line 2)"),
            "{e}"
        );

        let bad = "[[users]]\nname = \"app\"\npassword = \"hunter2\"\ngroups = [\"a\"]\n";
        let (e, line, _) = parse_err(bad);
        assert_eq!(line, 3, "{e}");
        assert!(
            e.contains("password of user 'app'") && e.contains("PHC"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");

        let (e, line, _) = parse_err(&user("app", "[]"));
        assert_eq!(line, 4, "{e}");
        assert!(e.contains("user 'app' is in no group"), "{e}");
        let (e, line, _) = parse_err(&format!("\n{}", user("app", "[\"a\", \"\"]")));
        assert_eq!(line, 5, "{e}");
        assert!(e.contains("empty group name"), "{e}");
        let (e, _, _) = parse_err(&user(" ", "[\"a\"]"));
        assert!(e.contains("name must not be empty"), "{e}");
    }

    #[test]
    fn authorization_errors_name_the_line() {
        let entry = |dest: &str, grants: &str| {
            format!("anonymous = true\n[[authorization]]\ndestination = \"{dest}\"\n{grants}")
        };
        for (dest, want) in [
            ("orders.>", "must start with queue://, topic:// or temp://"),
            ("queues://orders", "unknown prefix 'queues://'"),
            ("queue://", "no pattern"),
            ("queue:///queue/orders", "without a leading '/'"),
            ("queue://a.>.b", "'>' may only be the last segment"),
            ("topic://a..b", "empty segment"),
        ] {
            let (e, line, column) = parse_err(&entry(dest, "read = [\"a\"]\n"));
            assert_eq!((line, column), (3, 15), "{e}");
            assert!(e.contains(want), "{dest}: {e}");
        }
        let (e, line, _) = parse_err(&entry("queue://a", "read = [\"a\"]\nwrite = []\n"));
        assert_eq!(line, 5, "{e}");
        assert!(e.contains("`write = []` grants nobody"), "{e}");
        let (e, line, _) = parse_err("bridge-groups = [\"\"]\n");
        assert_eq!(line, 1, "{e}");
        assert!(e.contains("empty group name in `bridge-groups`"), "{e}");
        // An entry that grants nothing is a deny entry, not an error.
        let c = parse_ok(&entry("queue://secret.>", ""));
        let e = &c.authorization[0];
        assert!(e.read.is_none() && e.write.is_none() && e.admin.is_none());
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_column("a\nxé=b", 5), (2, 3));
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("abc", 99), (1, 4));
    }

    #[test]
    fn load_names_a_missing_file() {
        let e = SecurityConfig::load(Path::new("/nonexistent/sec.toml"));
        let text = e.map(|_| ()).map_err(|e| e.to_string());
        assert!(
            text.as_ref()
                .is_err_and(|t| t.contains("/nonexistent/sec.toml")),
            "{text:?}"
        );
    }
}
