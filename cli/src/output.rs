//! What the CLI prints: lines that survive a closed stdout, tables of
//! escaped text, JSON, and new keys written before their commit.

use irontoken::{AuditEvent, CreatedKey, Error, KeyRecord, Page};
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

/// Set once a write to stdout failed (EPIPE): nothing more is printed.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes one line to stdout, or drops it once stdout is closed.
pub fn say_line(args: std::fmt::Arguments<'_>) {
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{args}").and_then(|_| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes a new key's plaintext to stdout before its transaction commits:
/// if it cannot be written, the key is not created.
pub fn deliver_key(json: bool) -> impl FnOnce(&CreatedKey) -> Result<(), Error> {
    move |c| {
        let text = if json {
            let v = json!({"key": c.key.as_str(), "record": c.record});
            serde_json::to_string_pretty(&v).unwrap_or_default()
        } else {
            c.key.as_str().to_string()
        };
        if stdout_is_void() {
            return Err(Error::new(
                irontoken::ErrorKind::Internal,
                "stdout is closed: the new key would be seen by nobody, so nothing was created",
            ));
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")
            .and_then(|_| out.flush())
            .map_err(|e| {
                Error::new(
                    irontoken::ErrorKind::Internal,
                    format!("could not write the new key to stdout ({e}): nothing was created"),
                )
            })
    }
}

/// Whether stdout was closed (`>&-`). Rust's runtime puts /dev/null, opened
/// read-write, in place of a closed stdout, where every write succeeds and a
/// new key would be lost. A shell's `> /dev/null` opens it write-only: that
/// is the caller's explicit choice, and stays allowed. (A pipe whose reader
/// left is caught by the write itself.) Linux reads the open mode from
/// /proc; elsewhere only a missing descriptor counts.
#[cfg(unix)]
pub fn stdout_is_void() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return true; // no descriptor at all
    };
    drop(fd);
    let (Ok(out), Ok(null)) = (
        std::fs::metadata("/proc/self/fd/1"),
        std::fs::metadata("/dev/null"),
    ) else {
        return false;
    };
    if !(out.file_type().is_char_device() && out.rdev() == null.rdev()) {
        return false;
    }
    // `flags:` is octal; O_ACCMODE is 3 and O_RDWR 2.
    std::fs::read_to_string("/proc/self/fdinfo/1")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        })
        .is_some_and(|flags| flags & 3 == 2)
}

#[cfg(not(unix))]
pub fn stdout_is_void() -> bool {
    false
}

/// A value as it may be shown on a terminal: control, bidi and invisible
/// characters become visible `\u{...}` escapes, so stored text cannot forge
/// rows or reorder a listing.
pub fn shown(s: &str) -> String {
    if !s
        .chars()
        .any(|c| c.is_control() || irontoken::is_bidi_or_invisible(c))
    {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() || irontoken::is_bidi_or_invisible(c) {
                format!("\\u{{{:04x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Pretty JSON on stdout.
pub fn print_json(v: &impl serde::Serialize) {
    say!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// An instant as RFC 3339, `-` for none.
pub fn time(t: Option<i64>) -> String {
    match t {
        None => "-".into(),
        // Outside what RFC 3339 shows (a database written before expiries
        // were bounded to the year 9999): the number, not a panic.
        Some(t) if !(0..=irontoken::MAX_TIME).contains(&t) => t.to_string(),
        Some(t) => humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t as u64))
            .to_string(),
    }
}

/// A key record as aligned fields.
pub fn print_fields(r: &KeyRecord) {
    let rows = [
        ("id", r.id.clone()),
        ("prefix", format!("{}…", r.display_prefix)),
        ("owner", r.owner.clone()),
        ("name", r.name.clone()),
        ("description", r.description.clone()),
        ("status", r.status.as_str().to_string()),
        ("scopes", r.scopes.join(" ")),
        ("metadata", Value::Object(r.metadata.clone()).to_string()),
        ("created", time(Some(r.created_at))),
        ("expires", time(r.expires_at)),
        ("last used", time(r.last_used_at)),
        ("uses", r.usage_count.to_string()),
        ("version", r.version.to_string()),
        ("rotated from", r.rotated_from.clone().unwrap_or("-".into())),
        ("rotated to", r.rotated_to.clone().unwrap_or("-".into())),
        ("revoked", time(r.revoked_at)),
    ];
    for (k, v) in rows {
        say!("  {k:<13} {}", shown(&v));
    }
}

/// Prints a table with a header row, columns padded to their widest cell.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.iter().map(|c| shown(c)).collect())
        .collect();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = width[i]))
            .collect();
        say!("{}", s.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

/// How results are shown: `--json`, `--quiet`, or tables for a person.
#[derive(Clone, Copy)]
pub struct Printer {
    /// JSON on stdout (and JSON errors on stderr).
    pub json: bool,
    /// Only what a script needs: new keys and tokens, ids of listed items; no hints.
    pub quiet: bool,
}

impl Printer {
    /// A hint for a person, on stderr; nothing with --json or --quiet.
    pub fn hint(&self, args: std::fmt::Arguments<'_>) {
        if !self.json && !self.quiet {
            eprintln!("{args}");
        }
    }

    /// Any serializable result: JSON, or `text` for a person (nothing when quiet).
    pub fn value<T: serde::Serialize>(&self, v: &T, text: impl FnOnce(&T)) {
        self.value_or(v, text, |_| {});
    }

    /// [`value`](Self::value), with what `--quiet` prints instead (an id, a verdict).
    pub fn value_or<T: serde::Serialize>(
        &self,
        v: &T,
        text: impl FnOnce(&T),
        quiet: impl FnOnce(&T),
    ) {
        if self.json {
            print_json(v);
        } else if self.quiet {
            quiet(v);
        } else {
            text(v);
        }
    }

    /// A result that is itself the output (a token, a key): printed even when quiet.
    pub fn essential(&self, json: Value, text: &str) {
        if self.json {
            print_json(&json);
        } else {
            say!("{text}");
        }
    }

    /// A confirmation such as `deleted ID`: JSON, or the line (nothing when quiet).
    pub fn done(&self, json: Value, text: std::fmt::Arguments<'_>) {
        if self.json {
            say!("{json}");
        } else if !self.quiet {
            say!("{text}");
        }
    }

    /// After [`deliver_key`] wrote the key (and committed): the record.
    pub fn created(&self, c: &CreatedKey) {
        if !self.json && !self.quiet {
            eprintln!("(this key is shown once: store it now)");
            print_fields(&c.record);
        }
    }

    pub fn record(&self, r: &KeyRecord) {
        self.value(r, print_fields);
    }

    /// Prints a page as JSON, or as a table with a cursor hint on stderr.
    /// A page as JSON, as ids one per line (quiet: the first column), or as a
    /// table with a cursor hint on stderr.
    pub fn page<T: serde::Serialize>(
        &self,
        page: &Page<T>,
        header: &[&str],
        row: impl Fn(&T) -> Vec<String>,
    ) {
        if self.json {
            print_json(page);
            return;
        }
        if self.quiet {
            for item in &page.items {
                say!("{}", shown(row(item).first().map_or("", String::as_str)));
            }
            return;
        }
        table(header, page.items.iter().map(row).collect());
        if let Some(c) = &page.next_cursor {
            eprintln!("more: --cursor {c}");
        }
    }

    /// A page of key records.
    pub fn keys(&self, page: &Page<KeyRecord>) {
        let header = [
            "ID", "PREFIX", "OWNER", "NAME", "STATUS", "SCOPES", "EXPIRES", "USES",
        ];
        self.page(page, &header, |r| {
            vec![
                r.id.clone(),
                format!("{}…", r.display_prefix),
                r.owner.clone(),
                r.name.clone(),
                r.status.as_str().into(),
                r.scopes.join(","),
                time(r.expires_at),
                r.usage_count.to_string(),
            ]
        });
    }

    /// A page of audit events.
    pub fn audit(&self, page: &Page<AuditEvent>) {
        let header = [
            "ID", "TIME", "ACTION", "OUTCOME", "COUNT", "KEY", "PREFIX", "ACTOR",
        ];
        self.page(page, &header, |e| {
            let count = e
                .detail
                .as_ref()
                .and_then(|d| d.get("count"))
                .and_then(Value::as_u64)
                .unwrap_or(1);
            vec![
                e.id.to_string(),
                time(Some(e.at)),
                e.action.clone(),
                e.outcome.clone(),
                count.to_string(),
                e.key_id.clone().unwrap_or("-".into()),
                e.display_prefix.clone().unwrap_or("-".into()),
                e.actor.clone().unwrap_or("-".into()),
            ]
        });
    }
}

/// A progress bar on stderr for long work, shown only on a terminal (hidden
/// when stderr is a file or a pipe, and under `CI`).
pub fn progress(len: u64, what: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {percent}% {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}
