//! What `mqctl` prints, and where.
//!
//! Results go to stdout in one of three formats: a table for people (comfy-table; the default
//! when stdout is a terminal), plain text for scripts (one header line, then one row per line,
//! fields separated by tabs; the default otherwise), or JSON from the `mq_shared::ctl` types.
//! An empty result is a sentence, not an empty table. Warnings, hints and progress bars go to
//! stderr, and progress bars only when stderr is a terminal. A closed stdout (`| head`) becomes
//! [`CliError::BrokenPipe`], which exits quietly.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use comfy_table::{CellAlignment, ContentArrangement, presets};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::error::{CliError, Result};

/// Output format, chosen with `-o`/`--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Bordered table (the default when stdout is a terminal).
    Table,
    /// Header line, then one row per line, tab-separated (the default otherwise).
    Plain,
    /// JSON, one document (with `--watch`, one document per line).
    Json,
}

/// Rows to print, with their header and the sentence to print instead when there are none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Column names.
    pub header: Vec<&'static str>,
    /// Cells, one `Vec` per row, as many cells as header columns.
    pub rows: Vec<Vec<String>>,
    /// Columns (by index) that hold numbers and are right-aligned in table mode.
    pub numeric: Vec<usize>,
    /// Printed instead of the table when `rows` is empty.
    pub empty: String,
}

impl Table {
    /// A table with the given header and no rows.
    pub fn new(header: Vec<&'static str>, empty: impl Into<String>) -> Self {
        Table {
            header,
            rows: Vec::new(),
            numeric: Vec::new(),
            empty: empty.into(),
        }
    }

    /// Marks columns as numeric (right-aligned).
    pub fn numeric(mut self, columns: impl IntoIterator<Item = usize>) -> Self {
        self.numeric = columns.into_iter().collect();
        self
    }

    /// Appends one row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }
}

/// Renders a bordered table for people.
pub fn render_table(table: &Table, tty: bool) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(table.header.iter().copied());
    if !tty {
        t.force_no_tty();
    }
    for row in &table.rows {
        t.add_row(row.iter().map(String::as_str));
    }
    for &i in &table.numeric {
        if let Some(column) = t.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut s = t.to_string();
    s.push('\n');
    s
}

/// Renders the header and one tab-separated line per row, for scripts.
pub fn render_plain(table: &Table) -> String {
    let mut s = table.header.join("\t");
    s.push('\n');
    for row in &table.rows {
        s.push_str(&row.join("\t"));
        s.push('\n');
    }
    s
}

/// Where results go, in the chosen format.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    format: Format,
    stdout_tty: bool,
}

impl Output {
    /// The requested format, else a table on a terminal and plain text otherwise.
    pub fn new(requested: Option<Format>) -> Self {
        let stdout_tty = std::io::stdout().is_terminal();
        let format = requested.unwrap_or(if stdout_tty {
            Format::Table
        } else {
            Format::Plain
        });
        Output { format, stdout_tty }
    }

    /// The chosen format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether stdout is a terminal.
    pub fn is_tty(&self) -> bool {
        self.stdout_tty
    }

    /// Prints `table` as a table or plain rows, or its `empty` sentence. JSON callers print
    /// their typed value with [`Output::json`] instead.
    pub fn table(&self, table: &Table) -> Result<()> {
        write_stdout(&self.render(table))
    }

    /// The text [`Output::table`] would print.
    pub fn render(&self, table: &Table) -> String {
        if table.rows.is_empty() {
            if self.format == Format::Plain {
                // Scripts get no rows on stdout; people reading stderr get the sentence.
                note(&table.empty);
                return String::new();
            }
            return format!("{}\n", table.empty);
        }
        match self.format {
            Format::Plain => render_plain(table),
            Format::Table | Format::Json => render_table(table, self.stdout_tty),
        }
    }

    /// Prints `value` as pretty JSON.
    pub fn json<T: Serialize>(&self, value: &T) -> Result<()> {
        write_stdout(&format!("{}\n", to_json(value, true)))
    }

    /// Prints one sentence (a result for people, e.g. "Sent 3 messages ...").
    pub fn sentence(&self, text: &str) -> Result<()> {
        write_stdout(&format!("{text}\n"))
    }

    /// Prints a command's report: as JSON with `-o json`, else as the sentence `describe`
    /// makes of it.
    pub fn report<T: Serialize>(
        &self,
        value: &T,
        describe: impl FnOnce(&T) -> String,
    ) -> Result<()> {
        if self.format == Format::Json {
            self.json(value)
        } else {
            self.sentence(&describe(value))
        }
    }
}

/// `value` as JSON, pretty or on one line.
pub fn to_json<T: Serialize>(value: &T, pretty: bool) -> String {
    let rendered = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    // The report types are plain structs of strings and numbers: serialising cannot fail.
    rendered.unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
}

/// Writes `text` to stdout and flushes; a closed pipe becomes [`CliError::BrokenPipe`].
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(CliError::stdout)?;
    out.flush().map_err(CliError::stdout)
}

/// Prints `warning: TEXT` on stderr.
pub fn warn(text: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {text}");
}

/// Prints a note for people on stderr.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// A progress bar of `len` steps on stderr, hidden unless stderr is a terminal.
pub fn progress(len: u64, message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// `1h02m`, `3m12s`, `45s`, or `-` when unknown.
pub fn uptime(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return "-".to_string();
    };
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// `Some(x)` as text, `None` as `-`.
pub fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// `yes` or `no`.
pub fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(vec!["node", "queue", "depth"], "No queues.").numeric([2]);
        t.push(vec!["node1".into(), "demo".into(), "3".into()]);
        t.push(vec!["node2".into(), "demo".into(), "10".into()]);
        t
    }

    #[test]
    fn plain_is_header_then_one_row_per_line() {
        assert_eq!(
            render_plain(&sample()),
            "node\tqueue\tdepth\nnode1\tdemo\t3\nnode2\tdemo\t10\n"
        );
    }

    #[test]
    fn table_has_header_and_right_aligned_numbers() {
        let s = render_table(&sample(), false);
        let lines: Vec<&str> = s.lines().collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("node") && l.contains("depth"))
        );
        let row = lines
            .iter()
            .find(|l| l.contains("node1"))
            .expect("row present");
        assert!(row.contains("  3 "), "right aligned: {row}");
    }

    #[test]
    fn empty_table_is_a_sentence() {
        let out = Output {
            format: Format::Table,
            stdout_tty: false,
        };
        let t = Table::new(vec!["a"], "No queues on cluster demo.");
        assert_eq!(out.render(&t), "No queues on cluster demo.\n");
    }

    #[test]
    fn uptime_is_short() {
        assert_eq!(uptime(None), "-");
        assert_eq!(uptime(Some(45_000)), "45s");
        assert_eq!(uptime(Some(192_000)), "3m12s");
        assert_eq!(uptime(Some(3_720_000)), "1h02m");
        assert_eq!(uptime(Some(90_000_000)), "1d01h");
    }
}
