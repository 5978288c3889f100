//! Pieces shared by tool outputs: pagination cursors and group caps (in `service::paging`) and
//! the `data_quality` block (in `app::quality`), re-exported here.

pub use crate::app::quality::{CacheInfo, DataQuality, DataStatus};
pub use crate::service::paging::{Paging, cap};
