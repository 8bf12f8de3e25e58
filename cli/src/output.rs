//! What `mqctl` prints, and where.
//!
//! Results go to stdout in one of four formats: a table for people (comfy-table; the default
//! when stdout is a terminal), the same table with every column (`-o wide`), plain text for
//! scripts (one header line, then one row per line, fields separated by tabs; the default
//! otherwise), or JSON from the `mq_shared::ctl` types. An empty result is a sentence, not an
//! empty table. Warnings, hints and progress bars go to stderr, and progress bars only when
//! stderr is a terminal. A closed stdout (`| head`) becomes [`CliError::BrokenPipe`], which
//! exits quietly.
//!
//! A table shows its default columns, chosen to fit 80 columns, and fits the terminal's width
//! (`$COLUMNS`, else the terminal's own, else 80): text cells too long are cut with `…`, numbers
//! never. `--columns a,b,c` picks columns (any format but JSON), `-o wide` shows them all
//! uncut. Tables show at most `--limit` rows (100 by default; `--limit 0` for all) with a
//! notice on stderr saying how many were left out; plain output and JSON are only limited when
//! `--limit` is given.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use comfy_table::{CellAlignment, ContentArrangement, presets};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::error::{CliError, Result};

/// Output format, chosen with `-o`/`--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Bordered table of the default columns, fit to the terminal (the default on a terminal).
    Table,
    /// Bordered table of every column, uncut.
    Wide,
    /// Header line, then one row per line, tab-separated, every column (the default otherwise).
    Plain,
    /// JSON, one document (with `--watch`, one document per line).
    Json,
}

/// Rows shown by a table when `--limit` is not given.
pub const DEFAULT_TABLE_LIMIT: usize = 100;
/// Terminal width assumed when it cannot be told.
pub const DEFAULT_WIDTH: usize = 80;
/// Terminal height assumed when it cannot be told.
pub const DEFAULT_HEIGHT: usize = 24;

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
    /// The columns a table shows by default, in display order; `None`: all, in header order.
    pub defaults: Option<Vec<&'static str>>,
}

impl Table {
    /// A table with the given header and no rows.
    pub fn new(header: Vec<&'static str>, empty: impl Into<String>) -> Self {
        Table {
            header,
            rows: Vec::new(),
            numeric: Vec::new(),
            empty: empty.into(),
            defaults: None,
        }
    }

    /// Marks columns as numeric (right-aligned).
    pub fn numeric(mut self, columns: impl IntoIterator<Item = usize>) -> Self {
        self.numeric = columns.into_iter().collect();
        self
    }

    /// The columns shown by default in table mode, in display order (names not in the header
    /// are ignored).
    pub fn defaults(mut self, columns: impl IntoIterator<Item = &'static str>) -> Self {
        self.defaults = Some(columns.into_iter().collect());
        self
    }

    /// Appends one row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Indexes of the default columns.
    fn default_columns(&self) -> Vec<usize> {
        match &self.defaults {
            None => (0..self.header.len()).collect(),
            Some(names) => names
                .iter()
                .filter_map(|n| self.header.iter().position(|h| h == n))
                .collect(),
        }
    }

    /// Indexes of the columns `wanted` names, in that order; names compare without case, and
    /// `-`, `_` and spaces are alike (`old-master` is `old master`).
    fn pick(&self, wanted: &[String]) -> Result<Vec<usize>> {
        let key = |s: &str| -> String {
            s.chars()
                .map(|c| match c {
                    '_' | ' ' => '-',
                    c => c.to_ascii_lowercase(),
                })
                .collect()
        };
        wanted
            .iter()
            .map(|w| {
                self.header
                    .iter()
                    .position(|h| key(h) == key(w.trim()))
                    .ok_or_else(|| {
                        CliError::Usage(format!(
                            "no column `{w}` here; the columns are: {}",
                            self.header
                                .iter()
                                .map(|h| h.replace(' ', "-"))
                                .collect::<Vec<_>>()
                                .join(",")
                        ))
                    })
            })
            .collect()
    }

    /// The same table with only `columns`, in that order.
    fn project(&self, columns: &[usize]) -> Table {
        Table {
            header: columns.iter().map(|&i| self.header[i]).collect(),
            rows: self
                .rows
                .iter()
                .map(|r| {
                    columns
                        .iter()
                        .map(|&i| r.get(i).cloned().unwrap_or_default())
                        .collect()
                })
                .collect(),
            numeric: columns
                .iter()
                .enumerate()
                .filter(|(_, i)| self.numeric.contains(i))
                .map(|(k, _)| k)
                .collect(),
            empty: self.empty.clone(),
            defaults: None,
        }
    }
}

/// Renders a bordered table for people, as wide as its content.
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

/// Cuts the text columns of `table` so that it renders at most `width` columns wide: the
/// widest text column loses a character at a time, down to its header's width, and its cells
/// end in `…`. Numbers are never cut.
pub fn fit(table: &mut Table, width: usize) {
    let n = table.header.len();
    if n == 0 {
        return;
    }
    // Each column takes its content, a space either side and a border; one more border closes.
    let budget = width.saturating_sub(3 * n + 1);
    let mut widths: Vec<usize> = (0..n)
        .map(|i| {
            table
                .rows
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.width()))
                .chain([table.header[i].width()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let floor: Vec<usize> = (0..n)
        .map(|i| {
            if table.numeric.contains(&i) {
                widths[i]
            } else {
                table.header[i].width().clamp(3, 12).min(widths[i])
            }
        })
        .collect();
    while widths.iter().sum::<usize>() > budget {
        let widest = (0..n)
            .filter(|&i| widths[i] > floor[i])
            .max_by_key(|&i| (widths[i], std::cmp::Reverse(i)));
        match widest {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
    for row in &mut table.rows {
        for (i, cell) in row.iter_mut().enumerate() {
            if let Some(&w) = widths.get(i) {
                *cell = cut(cell, w);
            }
        }
    }
}

/// `text` cut to at most `width` columns, ending in `…` when cut.
pub fn cut(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
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

/// The terminal's width: `$COLUMNS`, else the width of the terminal on stdout or stderr, else
/// [`DEFAULT_WIDTH`].
pub fn terminal_width() -> usize {
    env_size("COLUMNS")
        .or_else(|| terminal_size().map(|(w, _)| w))
        .unwrap_or(DEFAULT_WIDTH)
        .max(20)
}

/// The terminal's height: `$LINES`, else the terminal's own, else [`DEFAULT_HEIGHT`].
pub fn terminal_height() -> usize {
    env_size("LINES")
        .or_else(|| terminal_size().map(|(_, h)| h))
        .unwrap_or(DEFAULT_HEIGHT)
        .max(8)
}

fn env_size(var: &str) -> Option<usize> {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|v| *v > 0)
}

fn terminal_size() -> Option<(usize, usize)> {
    terminal_size::terminal_size_of(std::io::stdout())
        .or_else(|| terminal_size::terminal_size_of(std::io::stderr()))
        .map(|(w, h)| (usize::from(w.0), usize::from(h.0)))
}

/// Output options from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-o`.
    pub format: Option<Format>,
    /// `--columns`.
    pub columns: Option<Vec<String>>,
    /// `--limit`; 0 means no limit.
    pub limit: Option<usize>,
}

/// What [`Output::render`] made of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The text for stdout.
    pub text: String,
    /// Rows left out by the limit.
    pub omitted: usize,
    /// Rows there were.
    pub total: usize,
}

impl Rendered {
    /// The notice for people when rows were left out, e.g. `Showing 100 of 250 rows; ...`.
    pub fn notice(&self) -> Option<String> {
        (self.omitted > 0).then(|| {
            format!(
                "Showing {} of {} rows; --limit N shows more, --limit 0 all.",
                self.total - self.omitted,
                self.total
            )
        })
    }
}

/// Where results go, in the chosen format.
#[derive(Debug, Clone)]
pub struct Output {
    format: Format,
    stdout_tty: bool,
    columns: Option<Vec<String>>,
    limit: Option<usize>,
    width: usize,
}

impl Output {
    /// The requested format, else a table on a terminal and plain text otherwise.
    pub fn new(options: Options) -> Self {
        let stdout_tty = std::io::stdout().is_terminal();
        let format = options.format.unwrap_or(if stdout_tty {
            Format::Table
        } else {
            Format::Plain
        });
        Output {
            format,
            stdout_tty,
            columns: options.columns,
            limit: options.limit,
            width: terminal_width(),
        }
    }

    /// The chosen format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether results are drawn as a table (`table` or `wide`).
    pub fn is_table(&self) -> bool {
        matches!(self.format, Format::Table | Format::Wide)
    }

    /// Whether stdout is a terminal.
    pub fn is_tty(&self) -> bool {
        self.stdout_tty
    }

    /// `--limit`, if given (0: no limit).
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Prints `table` as a table or plain rows, or its `empty` sentence, and a notice on stderr
    /// when rows were left out. JSON callers print their typed value with [`Output::json`].
    pub fn table(&self, table: &Table) -> Result<()> {
        let rendered = self.render(table, None)?;
        write_stdout(&rendered.text)?;
        if let Some(notice) = rendered.notice() {
            note(&notice);
        }
        Ok(())
    }

    /// The text [`Output::table`] would print; `max_rows` bounds the rows further (a screen).
    pub fn render(&self, table: &Table, max_rows: Option<usize>) -> Result<Rendered> {
        let columns = match &self.columns {
            Some(wanted) => table.pick(wanted)?,
            None if self.format == Format::Table => table.default_columns(),
            None => (0..table.header.len()).collect(),
        };
        let total = table.rows.len();
        if table.rows.is_empty() {
            let text = if self.format == Format::Plain {
                // Scripts get no rows on stdout; people reading stderr get the sentence.
                note(&table.empty);
                String::new()
            } else {
                format!("{}\n", table.empty)
            };
            return Ok(Rendered {
                text,
                omitted: 0,
                total,
            });
        }
        let limit = match self.limit {
            Some(0) => None,
            Some(n) => Some(n),
            None if self.is_table() => Some(DEFAULT_TABLE_LIMIT),
            None => None,
        };
        let shown = [limit, max_rows]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(total)
            .min(total);
        let mut view = table.project(&columns);
        view.rows.truncate(shown);
        let text = match self.format {
            Format::Plain | Format::Json => render_plain(&view),
            Format::Wide => render_table(&view, self.stdout_tty),
            Format::Table => {
                fit(&mut view, self.width);
                render_table(&view, self.stdout_tty)
            }
        };
        Ok(Rendered {
            text,
            omitted: total - shown,
            total,
        })
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

/// Asks before something that cannot be undone. With `yes` it goes ahead; on a terminal it asks
/// `QUESTION [y/N]` on stderr and reads the answer from stdin; otherwise (a script, a pipe) it
/// refuses, since nobody can answer: the caller must say `--yes`.
pub fn confirm(question: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "{question} Refused without --yes: stdin is not a terminal to ask on"
        )));
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    drop(err);
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::io("could not read the answer from", "stdin", e))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::Usage(
            "not confirmed; nothing was done".to_string(),
        ))
    }
}

/// Prints `warning: TEXT` on stderr.
pub fn warn(text: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {text}");
}

/// Prints a note for people on stderr.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// The alternate screen of a terminal, for `--watch`: entered when made, left (and the cursor
/// shown again) when dropped, so that the terminal is restored on every way out, Ctrl-C
/// included. Each frame is drawn from the top of a cleared screen and never scrolls.
#[derive(Debug)]
pub struct Screen {
    _private: (),
}

impl Screen {
    /// Enters the alternate screen and hides the cursor.
    pub fn enter() -> Result<Screen> {
        write_stdout("\x1b[?1049h\x1b[?25l")?;
        Ok(Screen { _private: () })
    }

    /// Draws one frame: cursor home, screen cleared, then `text` (no trailing newline, so that
    /// a frame as tall as the screen does not scroll it).
    pub fn frame(&self, text: &str) -> Result<()> {
        write_stdout(&format!("\x1b[H\x1b[2J{}", text.trim_end_matches('\n')))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\x1b[?25h\x1b[?1049l");
        let _ = out.flush();
    }
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

    fn output(format: Format, columns: Option<&str>, limit: Option<usize>) -> Output {
        Output {
            format,
            stdout_tty: false,
            columns: columns.map(|c| c.split(',').map(String::from).collect()),
            limit,
            width: 80,
        }
    }

    #[test]
    fn empty_table_is_a_sentence() {
        let out = output(Format::Table, None, None);
        let t = Table::new(vec!["a"], "No queues on cluster demo.");
        assert_eq!(
            out.render(&t, None).expect("renders").text,
            "No queues on cluster demo.\n"
        );
    }

    fn wide_sample() -> Table {
        let mut t = Table::new(vec!["node", "queue", "depth", "bytes"], "none")
            .numeric([2, 3])
            .defaults(["node", "queue", "depth"]);
        for i in 0..5 {
            t.push(vec![
                format!("node{i}"),
                format!("orders.{}", "x".repeat(100)),
                i.to_string(),
                "1234567".to_string(),
            ]);
        }
        t
    }

    #[test]
    fn tables_show_their_defaults_and_fit_the_width() {
        let r = output(Format::Table, None, None)
            .render(&wide_sample(), None)
            .expect("renders");
        assert!(r.text.lines().all(|l| l.width() <= 80), "{}", r.text);
        assert!(!r.text.contains("bytes"));
        assert!(r.text.contains('…'));
        let wide = output(Format::Wide, None, None)
            .render(&wide_sample(), None)
            .expect("renders");
        assert!(wide.text.contains("bytes") && wide.text.contains(&"x".repeat(100)));
        let plain = output(Format::Plain, None, None)
            .render(&wide_sample(), None)
            .expect("renders");
        assert!(plain.text.starts_with("node\tqueue\tdepth\tbytes\n"));
    }

    #[test]
    fn columns_are_picked_by_name_in_order() {
        let r = output(Format::Plain, Some("bytes,NODE"), None)
            .render(&wide_sample(), None)
            .expect("renders");
        assert!(
            r.text.starts_with("bytes\tnode\n1234567\tnode0\n"),
            "{}",
            r.text
        );
        let err = output(Format::Table, Some("nope"), None).render(&wide_sample(), None);
        assert!(matches!(err, Err(CliError::Usage(m)) if m.contains("node,queue,depth,bytes")));
    }

    #[test]
    fn limits_leave_rows_out_with_a_notice() {
        let r = output(Format::Plain, None, Some(2))
            .render(&wide_sample(), None)
            .expect("renders");
        assert_eq!(r.text.lines().count(), 3);
        assert_eq!((r.omitted, r.total), (3, 5));
        assert!(r.notice().is_some_and(|n| n.contains("2 of 5")));
        let all = output(Format::Plain, None, None)
            .render(&wide_sample(), Some(10))
            .expect("renders");
        assert_eq!(all.omitted, 0);
        assert_eq!(all.notice(), None);
        let screen = output(Format::Table, None, Some(0))
            .render(&wide_sample(), Some(1))
            .expect("renders");
        assert_eq!(screen.omitted, 4);
    }

    #[test]
    fn cutting_counts_display_columns() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("日本語テキスト", 5), "日本…");
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
