//! Human-readable output: aligned tables, key–value lists and dates.

use serde_json::Value;

/// A table whose columns are padded to their widest cell.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text: the header, then one line per row, columns two
    /// spaces apart; the last column is not padded.
    pub(crate) fn render(&self) -> String {
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        let lines: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let mut widths = vec![0usize; self.header.len()];
        for line in &lines {
            for (width, cell) in widths.iter_mut().zip(line.iter()) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in lines {
            let mut text = String::new();
            for (i, (cell, width)) in line.iter().zip(&widths).enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                let pad = width.saturating_sub(cell.chars().count());
                text.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    pub(crate) fn print(&self) {
        print!("{}", self.render());
    }
}

/// Prints `label  value` lines with the labels aligned.
pub(crate) fn print_fields(fields: &[(&str, String)]) {
    let width = fields
        .iter()
        .map(|(label, _)| label.chars().count())
        .max()
        .unwrap_or(0);
    for (label, value) in fields {
        println!("{label:width$}  {value}");
    }
}

/// A Unix time as RFC 3339 UTC, e.g. `2025-11-24T16:00:00Z`.
pub(crate) fn date(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The member `key` of a JSON object as a cell: strings bare, numbers as
/// they are, `null` or missing as `-`.
pub(crate) fn cell(value: &Value, key: &str) -> String {
    match value.get(key) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The member `key` (Unix seconds) as a date, or `-`.
pub(crate) fn date_cell(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_u64)
        .map_or_else(|| "-".to_owned(), date)
}

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01 (proleptic
/// Gregorian), in unsigned arithmetic since times here are after 1970.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_known_instants() {
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
        assert_eq!(date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(date(1_764_000_000), "2025-11-24T16:00:00Z");
        assert_eq!(date(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn table_aligns_columns_and_trims_the_last() {
        let mut table = Table::new(&["ID", "NAME", "STATE"]);
        table.row(vec!["d-1".into(), "laptop-42".into(), "active".into()]);
        table.row(vec!["d-22222".into(), "é".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "ID       NAME       STATE\nd-1      laptop-42  active\nd-22222  é          -\n"
        );
    }

    #[test]
    fn cells_show_missing_and_null_as_dash() {
        let v = serde_json::json!({"a": "x", "b": null, "n": 3, "t": 0});
        assert_eq!(cell(&v, "a"), "x");
        assert_eq!(cell(&v, "b"), "-");
        assert_eq!(cell(&v, "c"), "-");
        assert_eq!(cell(&v, "n"), "3");
        assert_eq!(date_cell(&v, "t"), "1970-01-01T00:00:00Z");
        assert_eq!(date_cell(&v, "b"), "-");
    }
}
