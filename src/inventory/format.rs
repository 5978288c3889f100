//! Which kind of inventory file a file is, told from its first bytes, so one `--inventory`
//! flag takes every export the user has (AWS, Azure, GCP, mixed in one run) without a flag per
//! cloud to get wrong.
//!
//! Each format has keys no other uses (`ResourceTagMappingList`, `subscriptionId`,
//! `assetType`, `asset_type`, ...). The first such key in the file decides: exports print
//! their paging fields and their first entry's keys within a few kilobytes, so a prefix of the
//! file is enough and a multi-gigabyte export is not read twice. Pure: no I/O.

use super::Resource;

/// What reading one file gave: its resources, and the entries that could not be resources.
#[derive(Debug, Default)]
pub(crate) struct ParsedFile {
    pub resources: Vec<Resource>,
    /// Entries skipped (not a resource id of the format's cloud).
    pub skipped: usize,
    /// The first skipped entry's id, to show.
    pub first_skipped: String,
    /// Why entries were skipped, for the message (`` `ResourceARN` is not an ARN ``).
    pub skip_reason: &'static str,
}

impl ParsedFile {
    /// Counts an entry that could not be a resource, keeping the first one's id to show.
    pub(crate) fn skip(&mut self, id: &str) {
        if self.skipped == 0 {
            self.first_skipped = id.chars().take(200).collect();
        }
        self.skipped += 1;
    }

    /// The scan part's error when entries were skipped.
    pub(crate) fn skipped_error(&self) -> Option<String> {
        (self.skipped > 0).then(|| {
            format!(
                "{} entries skipped: {} (first: `{}`)",
                self.skipped, self.skip_reason, self.first_skipped
            )
        })
    }
}

/// Bytes of a file looked at to tell its format.
pub(crate) const SNIFF_BYTES: usize = 256 * 1024;

/// A kind of inventory file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileFormat {
    /// `aws resourcegroupstaggingapi get-resources` output, or an array of its pages.
    TaggingApi,
    /// `az graph query` output (`{"count","data","skip_token","total_records"}`), the bare
    /// array of resource-graph extension 1.x, or the REST shape (`{"totalRecords", "count",
    /// "resultTruncated", "$skipToken", "data"}`).
    AzureResourceGraph,
    /// `gcloud asset search-all-resources --format=json` (an array of results), or the REST
    /// shape (`{"results": [...], "nextPageToken"}`).
    GcpSearch,
    /// `gcloud asset export --content-type=resource` (NDJSON, snake_case).
    GcpExport,
}

impl FileFormat {
    /// The format's name in messages.
    pub(crate) fn label(self) -> &'static str {
        match self {
            FileFormat::TaggingApi => "Tagging API (get-resources) JSON",
            FileFormat::AzureResourceGraph => "Azure Resource Graph export",
            FileFormat::GcpSearch => "GCP asset search (search-all-resources) JSON",
            FileFormat::GcpExport => "GCP asset export NDJSON",
        }
    }
}

/// What an unknown file is told to be instead.
pub(crate) const ACCEPTED: &str = "expected one of: `aws resourcegroupstaggingapi get-resources` JSON \
     ({\"ResourceTagMappingList\": [...]}), `az graph query ... -o json` output (with `data`, or \
     a bare array of {id, type, subscriptionId, tags, ...}), `gcloud asset search-all-resources \
     --format=json` (an array of {name, assetType, ...}), or `gcloud asset export \
     --content-type=resource` NDJSON (one {name, asset_type, resource} per line)";

/// Keys that tell a format, each used by that format only.
const KEYS: &[(&str, FileFormat)] = &[
    ("ResourceTagMappingList", FileFormat::TaggingApi),
    ("ResourceARN", FileFormat::TaggingApi),
    ("PaginationToken", FileFormat::TaggingApi),
    ("skip_token", FileFormat::AzureResourceGraph),
    ("total_records", FileFormat::AzureResourceGraph),
    ("$skipToken", FileFormat::AzureResourceGraph),
    ("totalRecords", FileFormat::AzureResourceGraph),
    ("resultTruncated", FileFormat::AzureResourceGraph),
    ("subscriptionId", FileFormat::AzureResourceGraph),
    ("resourceGroup", FileFormat::AzureResourceGraph),
    ("assetType", FileFormat::GcpSearch),
    ("nextPageToken", FileFormat::GcpSearch),
    ("asset_type", FileFormat::GcpExport),
];

/// The format of a file from its first bytes (`prefix`, up to [`SNIFF_BYTES`]; `whole` when
/// that is the entire file). The first telling key (a quoted key followed by `:`) decides.
/// An empty array (`[]`) is an empty Tagging API file, as it always was. None when nothing
/// tells.
pub(crate) fn sniff(prefix: &[u8], whole: bool) -> Option<FileFormat> {
    let n = prefix.len();
    let mut i = 0;
    while i < n {
        if prefix[i] != b'"' {
            i += 1;
            continue;
        }
        // A string: find its closing quote, stepping over escapes.
        let start = i + 1;
        let mut j = start;
        let mut escaped = false;
        while j < n && prefix[j] != b'"' {
            if prefix[j] == b'\\' {
                escaped = true;
                j += 2;
            } else {
                j += 1;
            }
        }
        if j >= n {
            break;
        }
        let followed_by_colon = prefix[j + 1..]
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b':');
        if !escaped
            && followed_by_colon
            && let Some((_, format)) = KEYS.iter().find(|(k, _)| k.as_bytes() == &prefix[start..j])
        {
            return Some(*format);
        }
        i = j + 1;
    }
    let trimmed: Vec<u8> = prefix
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    (whole && trimmed.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&trimmed) == b"[]")
        .then_some(FileFormat::TaggingApi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Option<FileFormat> {
        sniff(text.as_bytes(), true)
    }

    #[test]
    fn every_shape_is_told_apart() {
        use FileFormat::*;
        for (text, want) in [
            (
                r#"{"PaginationToken": "", "ResourceTagMappingList": []}"#,
                TaggingApi,
            ),
            (r#"[{"ResourceTagMappingList": []}]"#, TaggingApi),
            ("[]", TaggingApi),
            (" \n[ ]\n", TaggingApi),
            (
                r#"{"count": 1, "data": [{"id": "/subscriptions/s/x"}], "skip_token": null}"#,
                AzureResourceGraph,
            ),
            (
                r#"{"totalRecords": 2, "count": 2, "resultTruncated": "false", "data": []}"#,
                AzureResourceGraph,
            ),
            (
                r#"[{"id": "/subscriptions/s/r", "location": "x", "name": "n", "resourceGroup": "rg"}]"#,
                AzureResourceGraph,
            ),
            (
                r#"[{"additionalAttributes": {}, "assetType": "compute.googleapis.com/Instance"}]"#,
                GcpSearch,
            ),
            (r#"{"nextPageToken": "t", "results": []}"#, GcpSearch),
            (
                "{\"name\":\"//x.googleapis.com/a/b\",\"asset_type\":\"x.googleapis.com/A\"}\n{}",
                GcpExport,
            ),
        ] {
            assert_eq!(of(text), Some(want), "{text}");
        }
    }

    #[test]
    fn values_and_escapes_do_not_decide() {
        // `"assetType"` as a value (not followed by `:`) and inside an escaped string.
        let text = r#"[{"note": "assetType", "x": "a\"asset_type\": b", "subscriptionId": "s"}]"#;
        assert_eq!(of(text), Some(FileFormat::AzureResourceGraph));
        assert_eq!(of(r#"{"Items": []}"#), None);
        assert_eq!(of("{}"), None);
        assert_eq!(of("[1, 2]"), None);
        assert_eq!(sniff(b"[]", false), None, "a prefix of a longer file");
        assert_eq!(of(""), None);
        assert_eq!(of("\"unterminated"), None);
        assert_eq!(of("\"a\\"), None);
    }
}
