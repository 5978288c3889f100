//! Rendering a compliance report (`service::report::ReportData`) for people: Markdown and one
//! self-contained HTML file through minijinja templates (embedded at build time from
//! `templates/`), a CSV of every figure (`section,item,metric,value`), or the data itself as
//! JSON. HTML auto-escapes everything the templates print: tag values, names and ids come from
//! the cloud and are attacker-controlled. Markdown escapes them with the `md` filter.

mod charts;
mod csv_rows;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Value, context};
use thiserror::Error;

use crate::service::report::ReportData;

/// The report's output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportFormat {
    Markdown,
    Html,
    Csv,
    Json,
}

#[derive(Debug, Error)]
pub(crate) enum RenderError {
    #[error("the report template failed: {0}")]
    Template(#[from] minijinja::Error),
    #[error("the report could not be encoded: {0}")]
    Encode(String),
}

const MARKDOWN: &str = include_str!("../../templates/report.md.j2");
const HTML: &str = include_str!("../../templates/report.html.j2");

/// The report in a format.
pub(crate) fn render(data: &ReportData, format: ReportFormat) -> Result<String, RenderError> {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(data)
            .map(|s| s + "\n")
            .map_err(|e| RenderError::Encode(e.to_string())),
        ReportFormat::Csv => csv_rows::render(data).map_err(RenderError::Encode),
        ReportFormat::Markdown => render_template("report.md.j2", data),
        ReportFormat::Html => render_template("report.html.j2", data),
    }
}

fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    // Only the HTML template escapes (for HTML); Markdown escapes with `md` where it prints
    // outside data.
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html.j2") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    add_filters(&mut env);
    env.add_filter("md", md);
    env.add_template("report.md.j2", MARKDOWN)?;
    env.add_template("report.html.j2", HTML)?;
    Ok(env)
}

/// The number filters the report's templates use (`money`, `micros`, `pct`, `pct2`, `num`,
/// `signed`), for other HTML views of the same figures (the web console), so a figure prints
/// the same everywhere.
pub(crate) fn add_filters(env: &mut Environment<'_>) {
    env.add_filter("money", money);
    env.add_filter("micros", micros);
    env.add_filter("pct", pct);
    env.add_filter("pct2", pct2);
    env.add_filter("num", num);
    env.add_filter("signed", signed);
}

fn render_template(name: &str, data: &ReportData) -> Result<String, RenderError> {
    let env = environment()?;
    let template = env.get_template(name)?;
    let charts = charts::Charts::of(data);
    Ok(template.render(context! {
        r => Value::from(Serde(data)),
        charts => Value::from(Serde(&charts)),
    })?)
}

/// An amount as `1,234.50` (none: `n/a`).
fn money(v: Value) -> String {
    match f64::try_from(v) {
        Ok(x) => crate::cost::money::format_amount((x * 1_000_000.0).round() as i64),
        Err(_) => "n/a".into(),
    }
}

/// Millionths of the currency as `1,234.50`, from the exact integer (none: `n/a`).
fn micros(v: Value) -> String {
    match i64::try_from(v) {
        Ok(m) => crate::cost::money::format_amount(m),
        Err(_) => "n/a".into(),
    }
}

/// A percentage to one decimal (none: `n/a`).
fn pct(v: Value) -> String {
    match f64::try_from(v) {
        Ok(x) => format!("{x:.1}%"),
        Err(_) => "n/a".into(),
    }
}

/// A percentage to two decimals, as the tools give it (the headline).
fn pct2(v: Value) -> String {
    match f64::try_from(v) {
        Ok(x) => format!("{x:.2}%"),
        Err(_) => "n/a".into(),
    }
}

/// An integer with thousands separators.
fn num(v: Value) -> String {
    match i64::try_from(v.clone()) {
        Ok(n) if n < 0 => format!("-{}", crate::util::thousands(n.unsigned_abs())),
        Ok(n) => crate::util::thousands(n),
        Err(_) => v.to_string(),
    }
}

/// A change with its sign: `+3`, `-1.25`, `0`.
fn signed(v: Value) -> String {
    if let Ok(n) = i64::try_from(v.clone()) {
        return if n > 0 {
            format!("+{n}")
        } else {
            n.to_string()
        };
    }
    match f64::try_from(v) {
        Ok(x) if x > 0.0 => format!("+{x:.2}"),
        Ok(x) => format!("{x:.2}"),
        Err(_) => "n/a".into(),
    }
}

/// Text made inert in Markdown: table pipes, HTML, links and images are escaped (with the
/// backslash itself, so an escape cannot be undone), line breaks become spaces. Emphasis and
/// code spans stay: they cannot leave the cell or run anything.
fn md(v: Value) -> String {
    let text = if v.is_none() || v.is_undefined() {
        String::new()
    } else if let Some(s) = v.as_str() {
        s.to_string()
    } else {
        v.to_string()
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '[' | ']' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
