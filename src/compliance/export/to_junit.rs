//! Rows as JUnit XML, so CI systems (GitLab, Jenkins, GitHub test reporters) show violations
//! as test results: one `<testsuite>`, each selected resource a `<testcase>` (name: its id,
//! classname: its type), each violation at or above the fail threshold a `<failure>` (type:
//! its kind), violations below it listed in the case's `<system-out>` (they do not fail the
//! resource, as in `check`), and resources no rule applies to `<skipped/>`.
//!
//! The suite's counts follow JUnit's meaning — `tests` resources, `failures` failing
//! resources, `skipped` out-of-scope ones — and are known before the first case is written, so
//! the document streams. quick-xml escapes markup in text and attributes (`<`, `&`, quotes,
//! and newlines and tabs in attributes); characters XML 1.0 cannot carry at all, not even as
//! character references (C0 controls other than tab, LF and CR; U+FFFE, U+FFFF), become
//! U+FFFD.

use std::borrow::Cow;
use std::io::Write;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::{Row, decimal};
use crate::policy::Severity;

/// The suite's totals, counted before writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Totals {
    /// Test cases: every resource selected.
    pub resources: usize,
    /// Resources with at least one violation at or above the threshold.
    pub failing: usize,
    /// Resources no rule applies to.
    pub skipped: usize,
    /// `<failure>` elements: violations at or above the threshold.
    pub violations: usize,
}

/// Writes the document head on creation, then one test case per resource.
pub(crate) struct JunitCases<W: Write> {
    out: Writer<W>,
    fail_at: Severity,
}

impl<W: Write> JunitCases<W> {
    /// `properties` describe the run (policy hash, source, ...); `fail_at` decides which
    /// violations are failures.
    pub(crate) fn new(
        out: W,
        suite: &str,
        totals: Totals,
        fail_at: Severity,
        properties: &[(&str, String)],
    ) -> std::io::Result<JunitCases<W>> {
        let mut out = Writer::new_with_indent(out, b' ', 2);
        out.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let counts = [
            ("tests", totals.resources.to_string()),
            ("failures", totals.failing.to_string()),
            ("errors", "0".to_string()),
            ("skipped", totals.skipped.to_string()),
        ];
        let mut suites = BytesStart::new("testsuites");
        suites.push_attribute(("name", xml_safe(suite).as_ref()));
        for (k, v) in &counts {
            suites.push_attribute((*k, v.as_str()));
        }
        out.write_event(Event::Start(suites))?;
        let mut one = BytesStart::new("testsuite");
        one.push_attribute(("name", xml_safe(suite).as_ref()));
        for (k, v) in &counts {
            one.push_attribute((*k, v.as_str()));
        }
        out.write_event(Event::Start(one))?;
        out.write_event(Event::Start(BytesStart::new("properties")))?;
        for (name, value) in properties {
            let mut p = BytesStart::new("property");
            p.push_attribute(("name", xml_safe(name).as_ref()));
            p.push_attribute(("value", xml_safe(value).as_ref()));
            out.write_event(Event::Empty(p))?;
        }
        out.write_event(Event::End(BytesEnd::new("properties")))?;
        Ok(JunitCases { out, fail_at })
    }

    /// One resource: `rows` are its violations; `in_scope` false makes it a skipped case.
    pub(crate) fn case(
        &mut self,
        id: &str,
        resource_type: &str,
        in_scope: bool,
        rows: &[Row],
    ) -> std::io::Result<()> {
        let mut case = BytesStart::new("testcase");
        case.push_attribute(("name", xml_safe(id).as_ref()));
        case.push_attribute(("classname", xml_safe(resource_type).as_ref()));
        case.push_attribute(("time", "0"));
        if in_scope && rows.is_empty() {
            return self.out.write_event(Event::Empty(case));
        }
        self.out.write_event(Event::Start(case))?;
        if !in_scope {
            let mut skipped = BytesStart::new("skipped");
            skipped.push_attribute((
                "message",
                xml_safe(&format!(
                    "no rule of the policy applies to type {resource_type}"
                ))
                .as_ref(),
            ));
            self.out.write_event(Event::Empty(skipped))?;
        }
        let mut warnings = Vec::new();
        for row in rows {
            if row.severity < self.fail_at {
                warnings.push(format!("warning: {}", message(row)));
                continue;
            }
            let mut failure = BytesStart::new("failure");
            failure.push_attribute(("message", xml_safe(&message(row)).as_ref()));
            failure.push_attribute(("type", row.kind.as_str()));
            self.out.write_event(Event::Start(failure))?;
            self.out
                .write_event(Event::Text(BytesText::new(&xml_safe(&details(row)))))?;
            self.out.write_event(Event::End(BytesEnd::new("failure")))?;
        }
        if !warnings.is_empty() {
            self.out
                .write_event(Event::Start(BytesStart::new("system-out")))?;
            self.out
                .write_event(Event::Text(BytesText::new(&xml_safe(&warnings.join("\n")))))?;
            self.out
                .write_event(Event::End(BytesEnd::new("system-out")))?;
        }
        self.out.write_event(Event::End(BytesEnd::new("testcase")))
    }

    /// Closes the document and returns the output (flushed).
    pub(crate) fn finish(mut self) -> std::io::Result<W> {
        self.out
            .write_event(Event::End(BytesEnd::new("testsuite")))?;
        self.out
            .write_event(Event::End(BytesEnd::new("testsuites")))?;
        let mut inner = self.out.into_inner();
        inner.write_all(b"\n")?;
        inner.flush()?;
        Ok(inner)
    }
}

/// One line: key, kind, severity and the fix.
fn message(row: &Row) -> String {
    let key = if row.key.is_empty() { "tags" } else { &row.key };
    format!(
        "{key} {} ({}): {}",
        row.kind.as_str(),
        row.severity.as_str(),
        row.fix
    )
}

/// The failure's body: every exported fact about the violation, one per line.
fn details(row: &Row) -> String {
    let mut lines = vec![
        format!("resource: {}", row.resource_id),
        format!("name: {}", row.name),
        format!("account: {}", row.account),
        format!("region: {}", row.region),
    ];
    if let Some(current) = &row.current {
        lines.push(format!("current: {current}"));
    }
    if !row.expected.is_empty() {
        lines.push(format!("expected: {}", row.expected));
    }
    lines.push(format!("fix: {}", row.fix));
    if let Some((value, confidence)) = &row.suggestion {
        lines.push(format!("suggested: {value} (confidence {confidence:.3})"));
    }
    if let Some(owner) = &row.owner {
        lines.push(format!("owner: {owner}"));
    }
    if let Some(cost) = row.monthly_cost {
        lines.push(format!("monthly cost: {}", decimal(cost)));
    }
    lines.join("\n")
}

/// Text XML 1.0 can carry: characters it forbids outright become U+FFFD.
pub(crate) fn xml_safe(text: &str) -> Cow<'_, str> {
    let forbidden = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}');
    if text.chars().any(forbidden) {
        Cow::Owned(
            text.chars()
                .map(|c| if forbidden(c) { '\u{FFFD}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ViolationKind;

    fn row(severity: Severity, current: &str) -> Row {
        Row {
            resource_id: "arn:aws:ec2:us-east-1:111111111111:instance/i-1".into(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            resource_type: "ec2:instance".into(),
            name: "web<1>".into(),
            key: "Owner".into(),
            kind: ViolationKind::InvalidFormat,
            current: Some(current.into()),
            expected: "matches [a-z]+".into(),
            severity,
            fix: "change `Owner`".into(),
            monthly_cost: Some(12_500_000),
            suggestion: None,
            owner: None,
        }
    }

    fn document(fail_at: Severity, cases: &[(&str, bool, Vec<Row>)]) -> String {
        let totals = Totals {
            resources: cases.len(),
            failing: 1,
            skipped: 1,
            violations: 2,
        };
        let props = [("policy_hash", "abc\"<".to_string())];
        let mut w = JunitCases::new(Vec::new(), "tagwarden", totals, fail_at, &props).unwrap();
        for (id, in_scope, rows) in cases {
            w.case(id, "ec2:instance", *in_scope, rows).unwrap();
        }
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn hostile_values_are_escaped_and_forbidden_characters_replaced() {
        let nasty = "</failure><x a=\"1\">&amp;\u{1b}[31m\u{0}\r\n\t'=cmd|";
        let xml = document(
            Severity::Low,
            &[
                ("i-1", true, vec![row(Severity::High, nasty)]),
                ("i-2", true, vec![]),
                ("i-3", false, vec![]),
            ],
        );
        assert!(!xml.contains('\u{1b}') && !xml.contains('\u{0}'), "{xml}");
        assert!(
            xml.contains(
                "current: &lt;/failure&gt;&lt;x a=&quot;1&quot;&gt;&amp;amp;\u{FFFD}[31m\u{FFFD}&#13;\n\t&apos;=cmd|\n"
            ),
            "{xml}"
        );
        assert!(xml.contains("value=\"abc&quot;&lt;\""), "{xml}");
        assert!(
            xml.contains("<testcase name=\"i-2\" classname=\"ec2:instance\" time=\"0\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<skipped message=\"no rule of the policy applies to type ec2:instance\"/>"
            ),
            "{xml}"
        );
        assert!(xml.contains("<testsuites name=\"tagwarden\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\">"), "{xml}");
        assert!(
            xml.contains(
                "message=\"Owner invalid_format (high): change `Owner`\" type=\"invalid_format\""
            ),
            "{xml}"
        );
        assert!(xml.contains("monthly cost: 12.50"), "{xml}");
    }

    #[test]
    fn violations_below_the_threshold_are_warnings_not_failures() {
        let xml = document(
            Severity::High,
            &[(
                "i-1",
                true,
                vec![row(Severity::Low, "x"), row(Severity::Critical, "y")],
            )],
        );
        assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
        assert!(
            xml.contains(
                "<system-out>warning: Owner invalid_format (low): change `Owner`</system-out>"
            ),
            "{xml}"
        );
    }

    #[test]
    fn xml_safe_keeps_allowed_whitespace() {
        assert_eq!(xml_safe("a\tb\nc\rd"), "a\tb\nc\rd");
        assert_eq!(xml_safe("a\u{7}b\u{FFFF}"), "a\u{FFFD}b\u{FFFD}");
        assert!(matches!(xml_safe("plain"), Cow::Borrowed(_)));
    }
}
