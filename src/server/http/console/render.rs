//! The console's templates (`templates/console/`, embedded at build time) and their
//! environment: HTML auto-escaping on every template (tag keys and values, names and ids come
//! from the cloud and are attacker-controlled), strict undefined values, the report's number
//! filters, and `pct_width` for bar lengths.

use minijinja::{AutoEscape, Environment, Value};

const TEMPLATES: &[(&str, &str)] = &[
    (
        "base.html.j2",
        include_str!("../../../../templates/console/base.html.j2"),
    ),
    (
        "error.html.j2",
        include_str!("../../../../templates/console/error.html.j2"),
    ),
    (
        "login.html.j2",
        include_str!("../../../../templates/console/login.html.j2"),
    ),
    (
        "overview.html.j2",
        include_str!("../../../../templates/console/overview.html.j2"),
    ),
    (
        "resources.html.j2",
        include_str!("../../../../templates/console/resources.html.j2"),
    ),
    (
        "resource.html.j2",
        include_str!("../../../../templates/console/resource.html.j2"),
    ),
    (
        "queue.html.j2",
        include_str!("../../../../templates/console/queue.html.j2"),
    ),
    (
        "rules.html.j2",
        include_str!("../../../../templates/console/rules.html.j2"),
    ),
    (
        "history.html.j2",
        include_str!("../../../../templates/console/history.html.j2"),
    ),
    (
        "costs.html.j2",
        include_str!("../../../../templates/console/costs.html.j2"),
    ),
];

/// The environment with every console template. The templates are part of the binary and
/// tested: one that does not parse is a bug caught by the unit test below, so a failure here
/// is logged and the page answers 500 rather than the server refusing to start.
pub(super) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    crate::report::add_filters(&mut env);
    env.add_filter("pct_width", pct_width);
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "console template does not parse");
        }
    }
    env
}

/// A percentage (0–100, or a fraction of `of`) clamped to 0–100 with one decimal, for an SVG
/// or CSS width; 0 when unknown.
fn pct_width(v: Value, of: Option<Value>) -> String {
    let x = f64::try_from(v).unwrap_or(0.0);
    let x = match of.and_then(|o| f64::try_from(o).ok()) {
        Some(total) if total > 0.0 => x / total * 100.0,
        Some(_) => 0.0,
        None => x,
    };
    format!("{:.1}", x.clamp(0.0, 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let env = environment();
        for (name, _) in TEMPLATES {
            env.get_template(name).unwrap();
        }
    }

    #[test]
    fn widths_are_clamped() {
        assert_eq!(pct_width(Value::from(42.26), None), "42.3");
        assert_eq!(pct_width(Value::from(150), None), "100.0");
        assert_eq!(pct_width(Value::from(1), Some(Value::from(4))), "25.0");
        assert_eq!(pct_width(Value::from(1), Some(Value::from(0))), "0.0");
        assert_eq!(pct_width(Value::from(()), None), "0.0");
    }
}
