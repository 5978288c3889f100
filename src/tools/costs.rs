//! Costs in tool arguments: the `time_period` checks live in `service::costs`; amounts, the
//! `cost_quality` block and the resource costs that put money on findings live in `app::costs`
//! (both re-exported here).

pub use crate::app::costs::{Amount, CostQuality, ResourceCosts, SpendSummary, amount, api_charge};
pub use crate::service::costs::{parse_day, period_arg};
