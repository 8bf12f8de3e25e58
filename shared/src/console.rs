//! What the two web consoles, mqnode's `/console/` and `mqctl console`, serve alike: the head of
//! their one page, and the headers of their built-in files (the page, its script and its
//! stylesheet), whose Content-Security-Policy lets the page load and call only its own origin.
//!
//! Plain strings, so that each server builds its responses with its own HTTP stack.

/// The page may load and call only its own origin; no frames, no plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// `Content-Type` of the page.
pub const HTML: &str = "text/html; charset=utf-8";
/// `Content-Type` of its script.
pub const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// `Content-Type` of its stylesheet.
pub const CSS: &str = "text/css; charset=utf-8";

/// The headers of a built-in file of `content_type`: the browser asks again before using a
/// cached copy, keeps to the [`CSP`] and the type given, and sends no `Referer` from the page.
pub fn headers(content_type: &'static str) -> [(&'static str, &'static str); 5] {
    [
        ("content-type", content_type),
        ("cache-control", "no-cache"),
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ]
}

/// The whole page: a head with `title`, the `stylesheet` and the `script` (deferred), both
/// beside the page, then `body`, the markup inside `<body>`.
pub fn page(title: &str, stylesheet: &str, script: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{stylesheet}">
<script src="{script}" defer></script>
</head>
<body>
{body}</body>
</html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_wraps_its_body() {
        let page = page("t", "a.css", "a.js", "<main></main>\n");
        assert!(page.starts_with("<!doctype html>\n<html lang=\"en\">\n<head>\n"));
        assert!(page.contains("<title>t</title>\n"));
        assert!(page.contains("<link rel=\"stylesheet\" href=\"a.css\">\n"));
        assert!(page.contains("<script src=\"a.js\" defer></script>\n</head>\n"));
        assert!(page.ends_with("<body>\n<main></main>\n</body>\n</html>\n"));
    }

    #[test]
    fn header_names_are_lower_case_and_values_printable() {
        for (name, value) in headers(HTML) {
            assert_eq!(name, name.to_ascii_lowercase());
            assert!(value.bytes().all(|b| (b' '..=b'~').contains(&b)), "{name}");
        }
    }
}
