//! Rows as CSV (RFC 4180 quoting by the `csv` crate), written as they come.
//!
//! Tag values are whatever anyone with tagging rights typed, and a spreadsheet runs a cell
//! that starts with `=`, `+`, `-` or `@` as a formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`):
//! CSV injection. With the guard on (the default), a *text* cell that starts with one of
//! those, a tab, a carriage return or `'` itself gets a leading `'` — the mark spreadsheets
//! read as "text, not a formula" (OWASP's advice). The numeric columns (`monthly_cost`,
//! `suggestion_confidence`) are never marked, so a credit stays `-3.50`. The rule is exactly
//! reversible: dropping one leading `'` from a text cell that has one gives the value back.

use std::borrow::Cow;
use std::io::Write;

use super::{COLUMNS, Row, decimal};

/// Writes the header, then rows.
pub(crate) struct CsvRows<W: Write> {
    out: ::csv::Writer<W>,
    guard: bool,
}

impl<W: Write> CsvRows<W> {
    /// Writes the header row. `guard`: mark text cells that a spreadsheet would run.
    pub(crate) fn new(out: W, guard: bool) -> ::csv::Result<CsvRows<W>> {
        let mut out = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(out);
        out.write_record(COLUMNS)?;
        Ok(CsvRows { out, guard })
    }

    pub(crate) fn row(&mut self, row: &Row) -> ::csv::Result<()> {
        let guard = self.guard;
        let out = &mut self.out;
        let mut text = |s: &str| out.write_field(guarded(guard, s).as_bytes());
        text(&row.resource_id)?;
        text(&row.account)?;
        text(&row.region)?;
        text(&row.resource_type)?;
        text(&row.name)?;
        text(&row.key)?;
        text(row.kind.as_str())?;
        text(row.current.as_deref().unwrap_or(""))?;
        text(&row.expected)?;
        text(row.severity.as_str())?;
        let cost = row.monthly_cost.map(decimal).unwrap_or_default();
        self.out.write_field(cost)?;
        let (value, confidence) = match &row.suggestion {
            Some((v, c)) => (v.as_str(), format!("{c:.3}")),
            None => ("", String::new()),
        };
        self.out.write_field(guarded(guard, value).as_bytes())?;
        self.out.write_field(confidence)?;
        let owner = row.owner.as_deref().unwrap_or("");
        self.out.write_field(guarded(guard, owner).as_bytes())?;
        self.out.write_record(None::<&[u8]>)
    }

    /// Flushes and returns the output.
    pub(crate) fn finish(self) -> std::io::Result<W> {
        self.out
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

fn guarded(guard: bool, cell: &str) -> Cow<'_, str> {
    if guard {
        formula_safe(cell)
    } else {
        Cow::Borrowed(cell)
    }
}

/// A text cell a spreadsheet will not run: marked with a leading `'` when it starts with a
/// character that begins a formula (or with `'`, so that the mark can be removed unambiguously).
pub(crate) fn formula_safe(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Severity, ViolationKind};

    fn row() -> Row {
        Row {
            resource_id: "arn:aws:s3:::b".into(),
            account: "111111111111".into(),
            region: "global".into(),
            resource_type: "s3:bucket".into(),
            name: "b".into(),
            key: "Owner".into(),
            kind: ViolationKind::InvalidFormat,
            current: Some("=cmd|' /C calc'!A0".into()),
            expected: "matches [a-z]+".into(),
            severity: Severity::Medium,
            fix: "change it".into(),
            monthly_cost: Some(-3_500_000),
            suggestion: Some(("team@example.com".into(), 0.9571)),
            owner: Some("@evil, \"quoted\"\nline".into()),
        }
    }

    fn write(guard: bool, rows: &[Row]) -> String {
        let mut w = CsvRows::new(Vec::new(), guard).unwrap();
        for r in rows {
            w.row(r).unwrap();
        }
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn header_is_the_fourteen_columns() {
        assert_eq!(
            write(true, &[]),
            "resource_id,account,region,type,name,key,kind,current,expected,severity,\
             monthly_cost,suggested_value,suggestion_confidence,owner\r\n"
        );
    }

    #[test]
    fn cells_are_quoted_and_guarded_and_numbers_are_not() {
        let text = write(true, &[row()]);
        let line = text.split_once("\r\n").unwrap().1;
        assert_eq!(
            line,
            "arn:aws:s3:::b,111111111111,global,s3:bucket,b,Owner,invalid_format,\
             '=cmd|' /C calc'!A0,matches [a-z]+,medium,-3.50,team@example.com,0.957,\
             \"'@evil, \"\"quoted\"\"\nline\"\r\n"
        );
        let unguarded = write(false, &[row()]);
        assert!(unguarded.contains(",=cmd|' /C calc'!A0,"), "{unguarded}");
        assert!(
            unguarded.contains("\"@evil, \"\"quoted\"\"\nline\""),
            "{unguarded}"
        );
    }

    #[test]
    fn the_guard_marks_exactly_the_formula_starts_and_is_reversible() {
        for (cell, marked) in [
            ("=1+1", true),
            ("+1", true),
            ("-1", true),
            ("@SUM(A1)", true),
            ("\tx", true),
            ("\rx", true),
            ("'quoted", true),
            ("", false),
            ("a=b", false),
            ("prod", false),
            (" =x", false),
        ] {
            let safe = formula_safe(cell);
            assert_eq!(
                safe.starts_with('\'') && safe.len() == cell.len() + 1,
                marked,
                "{cell:?}"
            );
            let back = safe.strip_prefix('\'').unwrap_or(&safe);
            assert_eq!(back, cell, "reversible: {cell:?}");
        }
    }

    #[test]
    fn rows_read_back_exactly_through_a_csv_parser() {
        let mut nasty = row();
        nasty.current = Some("a\"b,c\r\nd\u{1b}[31m\u{0}e<>&'".into());
        nasty.name = "=HYPERLINK(\"http://x\")".into();
        let text = write(true, &[nasty.clone()]);
        let mut reader = ::csv::Reader::from_reader(text.as_bytes());
        let record = reader.records().next().unwrap().unwrap();
        let unmark = |s: &str| s.strip_prefix('\'').unwrap_or(s).to_string();
        assert_eq!(unmark(&record[4]), nasty.name);
        assert_eq!(unmark(&record[7]), nasty.current.unwrap());
        assert_eq!(&record[10], "-3.50");
        assert_eq!(reader.records().count(), 0);
    }
}
