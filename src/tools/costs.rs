//! Costs in tool arguments: the `time_period` checks. Amounts, the `cost_quality` block and
//! the resource costs that put money on findings live in `app::costs` (re-exported here).

use chrono::{Duration, NaiveDate, Utc};

use super::ToolError;
pub use crate::app::costs::{Amount, CostQuality, ResourceCosts, SpendSummary, amount, api_charge};
use crate::cost::Period;

/// Longest period a question may span.
const MAX_PERIOD_DAYS: i64 = 400;

/// Validates a `time_period` argument.
pub fn period_arg(start: &str, end: &str, today: NaiveDate) -> Result<Period, ToolError> {
    let start_day = parse_day(start, "time_period.start")?;
    let end_day = parse_day(end, "time_period.end")?;
    if start_day >= end_day {
        return Err(ToolError::invalid(format!(
            "argument `time_period`: start {start} must be before end {end} (end is excluded: \
             one day is start=2026-10-01, end=2026-10-02)"
        )));
    }
    if end_day > today + Duration::days(1) {
        return Err(ToolError::invalid(format!(
            "argument `time_period.end`: {end} is in the future; costs are known up to today \
             (end {} at the latest)",
            today + Duration::days(1)
        )));
    }
    if (end_day - start_day).num_days() > MAX_PERIOD_DAYS {
        return Err(ToolError::invalid(format!(
            "argument `time_period`: at most {MAX_PERIOD_DAYS} days per question; split the \
             period"
        )));
    }
    Ok(Period {
        start: start_day,
        end: end_day,
    })
}

/// `YYYY-MM-DD` → date, for messages that name the argument.
pub fn parse_day(text: &str, argument: &str) -> Result<NaiveDate, ToolError> {
    let padded = text.len() == 10;
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| padded)
        .ok_or_else(|| {
            ToolError::invalid(format!(
                "argument `{argument}`: {text:?} is not a date; use YYYY-MM-DD, e.g. {}",
                Utc::now().date_naive() - Duration::days(30)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_validated() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let p = period_arg("2026-10-01", "2026-11-01", today).unwrap();
        assert_eq!(p.days(), 31);
        assert!(period_arg("2026-11-01", "2026-10-01", today).is_err());
        assert!(period_arg("2026-10-01", "2026-10-01", today).is_err());
        assert!(period_arg("2026-10-01", "2026-12-01", today).is_err());
        assert!(period_arg("2026-10-1", "2026-11-01", today).is_err());
        assert!(period_arg("2024-01-01", "2026-11-01", today).is_err());
        assert!(period_arg("2026-11-27", "2026-11-28", today).is_ok());
        let e = period_arg("2026-13-01", "2026-11-01", today).unwrap_err();
        assert!(e.to_string().contains("time_period.start"), "{e}");
    }
}
