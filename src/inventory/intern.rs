//! Interning the texts of an inventory (tag keys and values, accounts, regions, types): a
//! million resources name the same few hundred keys, values, accounts and regions over and
//! over, and holding each once as a shared `ArcStr` (8 bytes per use, no allocation) took a
//! resource from ~850 bytes to ~300.
//!
//! An interner lives as long as one read (a file, a page of an API answer); the strings it
//! handed out live as long as the resources using them, so nothing outlives the inventory.

use std::collections::HashSet;

use arcstr::ArcStr;
use rustc_hash::FxBuildHasher;

use super::{Resource, Tags};

/// The distinct texts seen so far in one read.
#[derive(Default)]
pub(crate) struct Interner {
    texts: HashSet<ArcStr, FxBuildHasher>,
}

impl Interner {
    /// The shared copy of `text`, made on first sight.
    pub(crate) fn intern(&mut self, text: &str) -> ArcStr {
        if text.is_empty() {
            return ArcStr::new();
        }
        if let Some(shared) = self.texts.get(text) {
            return shared.clone();
        }
        let shared = ArcStr::from(text);
        self.texts.insert(shared.clone());
        shared
    }

    /// `tags` with each key and value replaced by its shared copy (for readers that got them
    /// from several sources, e.g. one interner per API partition).
    pub(crate) fn share_tags(&mut self, tags: Tags) -> Tags {
        tags.iter()
            .map(|(k, v)| (self.intern(k), self.intern(v)))
            .collect()
    }

    /// `r` with its account, region, type and tags shared (for readers whose parser made each
    /// text its own string: Azure and GCP exports, AWS Config, Resource Explorer). The id and
    /// name are left: they are mostly unique.
    pub(crate) fn share(&mut self, mut r: Resource) -> Resource {
        r.account = self.intern(&r.account);
        r.region = self.intern(&r.region);
        r.resource_type = self.intern(&r.resource_type);
        r.tags = self.share_tags(std::mem::take(&mut r.tags));
        r
    }

    /// Distinct texts held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.texts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_share_one_allocation() {
        let mut interner = Interner::default();
        let a = interner.intern("production");
        let b = interner.intern(&String::from("production"));
        assert!(ArcStr::ptr_eq(&a, &b));
        assert_eq!(a, "production");
        let c = interner.intern("staging");
        assert!(!ArcStr::ptr_eq(&a, &c));
        assert_eq!(interner.len(), 2);
    }

    #[test]
    fn resources_from_separate_strings_end_up_sharing_them() {
        let made = |id: &str| crate::inventory::Resource {
            id: id.into(),
            provider: crate::inventory::Provider::Azure,
            account: ArcStr::from("sub-1"),
            region: ArcStr::from("westeurope"),
            resource_type: ArcStr::from("compute:virtualmachines"),
            name: ArcStr::from(id),
            tags: vec![(ArcStr::from("env"), ArcStr::from("prod"))],
            attributes: Default::default(),
        };
        let mut interner = Interner::default();
        let a = interner.share(made("vm-1"));
        let b = interner.share(made("vm-2"));
        assert!(ArcStr::ptr_eq(&a.account, &b.account));
        assert!(ArcStr::ptr_eq(&a.region, &b.region));
        assert!(ArcStr::ptr_eq(&a.resource_type, &b.resource_type));
        assert!(ArcStr::ptr_eq(&a.tags[0].1, &b.tags[0].1));
        assert_eq!(b, made("vm-2"), "same texts");
    }

    #[test]
    fn the_empty_text_is_not_stored() {
        let mut interner = Interner::default();
        assert_eq!(interner.intern(""), "");
        assert_eq!(interner.len(), 0);
    }

    #[test]
    fn shared_texts_outlive_the_interner() {
        let kept = {
            let mut interner = Interner::default();
            interner.intern("team-payments")
        };
        assert_eq!(kept, "team-payments");
        assert_eq!(ArcStr::strong_count(&kept), Some(1));
    }
}
